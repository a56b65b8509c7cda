"""Soak run of the model-based window test (tests/test_gui_stateful.py): many more random
sessions than CI runs, to look for ways of losing the annotator's work. Prints what it ran;
a failure prints the shrunk sequence of user actions.

Run: QT_QPA_PLATFORM=offscreen python bench/soak_gui_session.py [--examples 300] [--steps 60]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.test_gui_stateful import run_machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841 - the machine needs one
    start = time.perf_counter()
    run_machine(args.examples, args.steps)
    print(f"{args.examples} random sessions of up to {args.steps} steps: nothing lost "
          f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
