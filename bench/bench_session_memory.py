"""Benchmark: the window's resident memory while an annotator walks through a folder of large
photos (prints a table; not a test).

Each variant runs in its own process: a real main window (offscreen) with the real default
pipeline opens N JPEGs, shows them one after another (each segmented, the next two ahead of it)
and then walks back to the first. After each image: the memory Python and numpy hold (live,
tracemalloc), the process's resident memory (VmRSS: the allocator keeps freed memory, so it lags),
the megabytes of pixels the session holds and the images that keep a cutter. `kept` is the session before images out of view let
their pixels and cutters go (every shown image kept both: the baseline), `dropped` the session now.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_session_memory.py [--images 10] [--side 4000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_photos(folder: Path, count: int, side: int) -> list[Path]:
    """Distinct large JPEGs: the astronaut photo scaled up, each shifted in hue and mirrored."""
    from PIL import Image
    from skimage import data
    base = Image.fromarray(data.astronaut()).resize((side, side * 2 // 3), Image.Resampling.BICUBIC)
    paths = []
    for i in range(count):
        pixels = np.roll(np.asarray(base), i, axis=2) if i % 3 else np.asarray(base)
        image = Image.fromarray(pixels[:, ::-1] if i % 2 else pixels)
        paths.append(folder / f"photo_{i:03d}.jpg")
        image.save(paths[-1], quality=90)
    return paths


def walk(paths: list[str], variant: str) -> list[dict]:
    """Run in the child: show every image in turn, then go back to the first."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    from core.settings import Settings
    from gui.main_window import MainWindow
    from gui.session import Session
    tracemalloc.start()
    if variant == "kept":
        Session._drop_out_of_view = lambda self, doc, at: None
    app = QApplication.instance() or QApplication([])  # noqa: F841 - the window needs one
    folder = tempfile.mkdtemp()
    window = MainWindow(Settings(), qsettings=QSettings(f"{folder}/cuttree.ini", QSettings.Format.IniFormat))
    window.show()
    session = window.session
    rows = []

    def settle() -> None:
        # an event loop, not QTest.qWait: qWait keeps the GIL and starves the worker thread ~10x
        while session.doc.tree is None or session.worker.busy():
            loop = QEventLoop()
            QTimer.singleShot(20, loop.quit)
            loop.exec()

    session.add_paths([Path(p) for p in paths])
    order = list(range(len(paths))) + list(range(len(paths) - 2, -1, -1))
    for step, index in enumerate(order):
        session.show_image(index)
        settle()
        rows.append({"step": step, "image": index, "rss": resident_mb(), "live": tracemalloc.get_traced_memory()[0] / 2 ** 20,
                     "pixels": sum(d.image.nbytes for d in session.docs if d.image is not None) / 2 ** 20,
                     "cutters": sum(d.cutter is not None for d in session.docs)})
    session.ask = lambda *question: "Discard"
    window.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--side", type=int, default=4000, help="long side of each photo (px)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(walk(json.loads(Path(args.child[0]).read_text()), args.child[1])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "paths.json"
        listing.write_text(json.dumps([str(p) for p in write_photos(Path(tmp), args.images, args.side)]))
        runs = {}
        for variant in ("kept", "dropped"):
            out = subprocess.run([sys.executable, __file__, "--child", str(listing), variant],
                                 capture_output=True, text=True, check=True).stdout
            runs[variant] = json.loads(out.strip().splitlines()[-1])
    print(f"\n{args.images} JPEGs of {args.side}x{args.side * 2 // 3}, shown in turn and back to the first\n")
    print("| step | image shown | kept: live MB | RSS MB | pixels MB | cutters | dropped: live MB | RSS MB | pixels MB "
          "| cutters | live ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for old, new in zip(runs["kept"], runs["dropped"]):
        print(f"| {old['step']} | {old['image']} | {old['live']:.0f} | {old['rss']:.0f} | {old['pixels']:.0f} | "
              f"{old['cutters']} | {new['live']:.0f} | {new['rss']:.0f} | {new['pixels']:.0f} | {new['cutters']} | "
              f"{new['live'] / old['live']:.2f} |")
    for measure in ("live", "rss"):
        peak = {v: max(r[measure] for r in rows) for v, rows in runs.items()}
        print(f"peak {measure}: kept {peak['kept']:.0f} MB, dropped {peak['dropped']:.0f} MB "
              f"({peak['dropped'] / peak['kept']:.2f} of the baseline)")


if __name__ == "__main__":
    main()
