"""COCO import and JSON reading on hostile inputs: peak memory and time (not a test; prints a table).

Each case runs in its own subprocess, which reports `resource.getrusage(RUSAGE_SELF).ru_maxrss`.
Baseline in the same run: the import as it was before issue 13 (`git show <rev>:core/coco_import.py`,
default the commit before the rewrite), under an address-space limit so that it fails instead of
taking the machine; and `json.loads` for the JSON reader.

    .venv/bin/python bench/bench_import.py [--baseline-rev e0dd354] [--limit-gb 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.coco_builders import png_with_header                          # noqa: E402
from tests.test_coco_import_robust import triangles_json                 # noqa: E402

RUN_IMPORT = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[5])
import importlib
module = importlib.import_module(sys.argv[4])
started = time.perf_counter()
try:
    result = module.import_coco(sys.argv[1], sys.argv[2], sys.argv[3])
    outcome = f"{result.annotations} regions, {len(result.problems)} skipped"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc).splitlines()[0][:70]
print(json.dumps({"s": time.perf_counter() - started, "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "outcome": outcome}))
"""

RUN_JSON = """
import json, resource, sys, time
from core.safe_json import load_json
started = time.perf_counter()
if sys.argv[2] == "safe":
    load_json(sys.argv[1], max_bytes=1 << 31)
else:
    json.loads(open(sys.argv[1], "rb").read())
print(json.dumps({"s": time.perf_counter() - started, "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "outcome": "parsed"}))
"""


def run(code: str, args: list[str], limit_gb: float | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    limit = f"ulimit -v {int(limit_gb * 1024 ** 2)}; " if limit_gb else ""
    command = limit + " ".join([sys.executable, "-c", _quote(code)] + [_quote(a) for a in args])
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=1200)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["killed"])[-1][:70]
        return {"s": float("nan"), "mb": float("nan"), "outcome": f"crashed: {tail}"}
    return json.loads(lines[-1])


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def cases(folder: Path) -> list[tuple[str, Path]]:
    giant = folder / "giant.json"
    giant.write_text(json.dumps({"images": [{"id": 1, "file_name": "g.png", "width": 32768, "height": 32768}],
                                 "annotations": [], "categories": []}, separators=(",", ":")))
    bomb = folder / "bomb.json"
    png_with_header(folder / "bomb.png", 20000, 20000)
    bomb.write_text(json.dumps({"images": [{"id": 1, "file_name": "bomb.png", "width": 64, "height": 64}],
                                "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                                 "segmentation": [[2, 2, 30, 2, 30, 30]]}],
                                "categories": [{"id": 1, "name": "cat"}]}))
    return [(f"{giant.stat().st_size}-byte JSON declaring one 32768x32768 image", giant),
            ("0.3 MB JSON, 2000 triangles on a 4096x4096 image", triangles_json(folder)),
            ("image whose header claims 20000x20000", bomb)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-rev", default="e0dd354")
    parser.add_argument("--limit-gb", type=float, default=3.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old = folder / "old"
        old.mkdir()
        source = subprocess.run(["git", "show", f"{args.baseline_rev}:core/coco_import.py"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        (old / "old_coco_import.py").write_text(source)
        for n, (name, path) in enumerate(cases(folder)):
            for label, module, where in (("before", "old_coco_import", old), ("now", "core.coco_import", ROOT)):
                result = run(RUN_IMPORT, [str(path), str(folder), str(folder / f"p-{label}-{n}"), module, str(where)],
                             args.limit_gb)
                rows.append((name, label, result))
        big = folder / "one-string.json"
        big.write_bytes(b'{"images": [], "annotations": [], "note": "' + b"x" * 200_000_000 + b'"}')
        for label, mode in (("json.loads (baseline)", "plain"), ("safe_json.load_json", "safe")):
            rows.append(("200 MB JSON holding one string", label, run(RUN_JSON, [str(big), mode])))
    print(f"address-space limit for every run: {args.limit_gb:g} GB\n")
    print("| input | code | peak RSS (MB) | time (s) | outcome |\n|---|---|---|---|---|")
    for name, label, r in rows:
        print(f"| {name} | {label} | {r['mb']:.0f} | {r['s']:.2f} | {r['outcome']} |")


if __name__ == "__main__":
    main()
