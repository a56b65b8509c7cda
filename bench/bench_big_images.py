"""Benchmark: peak memory and time of `segment` on huge images and decompression bombs (prints a table).

Each case runs `main.py segment FILE --out DIR` (classic encoder) in a fresh subprocess, once with
this worktree's code and once with a baseline commit (default `main`, extracted with `git archive`),
interleaved. Peak RSS is the child's `ru_maxrss` from `os.wait4`; a child over --cap-gb resident
memory or --timeout seconds is killed (shown as "killed"). Goals (issue 13): a 12000x9000 JPEG in
<= 2 GB and <= 10 s; bombs refused (or handled within that budget) in under a second.

    .venv/bin/python bench/bench_big_images.py [--baseline main] [--cap-gb 6] [--only jpeg]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_inputs import bomb_png, lying_tiff, photo_jpeg, striped_bomb_png  # noqa: E402

CASES: dict[str, Callable[[Path], Path]] = {
    "jpeg 4000x3000": lambda d: photo_jpeg(d / "photo4k.jpg", 4000, 3000),
    "jpeg 12000x9000": lambda d: photo_jpeg(d / "photo12k.jpg", 12000, 9000),
    "png 20000^2 ramp": lambda d: striped_bomb_png(d / "ramp20k.png", 20000, 20000),
    "png 31000^2 zeros": lambda d: bomb_png(d / "zeros31k.png", 31000, 31000),
    "tiff 0.5 Gpx header": lambda d: lying_tiff(d / "claims05.tif", 25000, 20000),
    "tiff 0.9 Gpx header": lambda d: lying_tiff(d / "claims09.tif", 30000, 30000),
}


def extract(ref: str, into: Path) -> Path:
    """The tree of git `ref` as plain files under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_case(code: Path, image: Path, out: Path, cap: int, timeout: float) -> tuple[str, float, float, float, str]:
    """(outcome, seconds, CPU seconds, peak GB, last stderr line) of one `segment` run (CPU time
    counts too: the machine is shared, so wall time drifts with the load)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    stderr = out.with_suffix(".stderr")
    start = time.perf_counter()
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(code / "main.py"), "segment", str(image), "--out", str(out)],
                                cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=err)
    killed, finished = threading.Event(), threading.Event()

    def watch() -> None:        # never polls the child: only wait4 below reaps it (and gets its usage)
        while not finished.is_set():
            if rss_bytes(proc.pid) > cap or time.perf_counter() - start > timeout:
                killed.set()
                os.kill(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    finished.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    watcher.join()
    lines = [ln for ln in stderr.read_text(errors="replace").splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if any(ln.startswith("Traceback") for ln in lines):
        last = "TRACEBACK " + last
    outcome = "killed" if killed.is_set() else f"exit {proc.returncode}"
    return outcome, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / 1e9, last[:90]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git ref of the baseline code")
    parser.add_argument("--cap-gb", type=float, default=6.0, help="kill a run above this resident memory")
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        baseline = extract(args.baseline, tmp_path / "baseline")
        inputs = tmp_path / "inputs"
        inputs.mkdir()
        rows = []
        for name, build in CASES.items():
            if args.only not in name:
                continue
            image = build(inputs)
            for label, code in ((args.baseline, baseline), ("this branch", ROOT)):
                out = tmp_path / f"out-{len(rows)}"
                outcome, seconds, cpu, peak, last = run_case(code, image, out, int(args.cap_gb * 1e9), args.timeout)
                rows.append((name, f"{image.stat().st_size / 1e6:.2f}", label, outcome, seconds, cpu, peak, last))
                print(f"  {name:20} {label:12} {outcome:8} {seconds:7.1f} s {cpu:7.1f} cpu-s {peak:6.2f} GB  {last}",
                      file=sys.stderr, flush=True)
            image.unlink()
        print("\n| case | file MB | code | outcome | time s | CPU s | peak RSS GB | last message |")
        print("|---|---:|---|---|---:|---:|---:|---|")
        for name, size, label, outcome, seconds, cpu, peak, last in rows:
            print(f"| {name} | {size} | {label} | {outcome} | {seconds:.1f} | {cpu:.1f} | {peak:.2f} | "
                  f"{last.replace('|', '/')} |")


if __name__ == "__main__":
    main()
