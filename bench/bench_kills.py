"""Kill trials (not a test; prints a table): SIGKILL multi-file writes at random moments.

Panoptic export (PNGs + JSON), semantic export (PNGs + categories + previews) and COCO import
(annotation files + project.json, into a new and into an existing project). After each kill the
export must read back whole (old or new set), the project must be the old or the new one, and a
re-run of the import must give exactly the uninterrupted result (the trials raise otherwise).
Before issue 13, 10 of 40 killed panoptic exports left an old JSON beside new PNGs.

    .venv/bin/python bench/bench_kills.py [--trials 50]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_coco_import_robust import kill_trials                   # noqa: E402
from tests.test_export_datasets import kill_export_trials               # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for fmt, out in (("panoptic", "pan.json"), ("semantic", "sem")):
            result = kill_export_trials(tmp / fmt, fmt, out, args.trials, 1)
            rows.append((f"export --format {fmt} (24 images)", result["trials"], result["killed mid-set"],
                         f"{result['mixed']} mixed sets"))
        for existing in (False, True):
            (tmp / f"import-{existing}").mkdir()
            result = kill_trials(tmp / f"import-{existing}", args.trials, 2 + existing, existing)
            rows.append((f"import into {'an existing' if existing else 'a new'} project (30 images)",
                         args.trials, result["interrupted"],
                         f"{result['old']} old, {result['new']} new, 0 torn; every re-run exact"))
    print(f"| write path | trials | kills that landed mid-write | outcome |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
