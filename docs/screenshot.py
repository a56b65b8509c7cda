"""Re-take docs/screenshot.png: the main window on the sample photos, a few regions labelled
and the suggestions they give for the others.

Run: QT_QPA_PLATFORM=offscreen python docs/screenshot.py   (or under Xvfb)
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.app import SAMPLES, sample_doc  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402

OUT = Path(__file__).resolve().parent / "screenshot.png"
# (row, column) as fractions of the astronaut photo, and the category key each gets
POINTS = ((0.70, 0.35), (0.25, 0.50), (0.08, 0.12), (0.10, 0.60), (0.35, 0.80), (0.85, 0.75))
LABELS = (1, 1, 9, 4, 3, 9)            # person, person, object (flag), building (backdrop), vehicle, object


def main() -> None:
    app = QApplication.instance() or QApplication([])
    qsettings = QSettings(str(Path(tempfile.mkdtemp()) / "shot.ini"), QSettings.Format.IniFormat)
    window = MainWindow(qsettings=qsettings)
    window.resize(1400, 900)
    window.show()
    window.session.add_images([sample_doc(name) for name in SAMPLES])
    while window.doc.tree is None:
        app.processEvents()
        time.sleep(0.02)
    window.granularity.setValue(int(window.granularity.maximum() * 0.48))
    tree = window.doc.tree
    rows, cols = tree.atom_map.shape
    for (y, x), category in zip(POINTS, LABELS):      # a few regions labelled by what they show
        window.session.set_selection([tree.node_at(int(y * rows), int(x * cols))])
        window.session.label_by_key(category)
    window.session.set_selection([tree.node_at(int(0.75 * rows), int(0.85 * cols))])
    deadline = time.time() + 60                      # the labels' suggestions for the other regions
    while (window.session.suggester.busy() or window.panel_pending()) and time.time() < deadline:
        app.processEvents()
        time.sleep(0.02)
    window.layers.scrollToTop()
    window.set_tool("brush")                         # the brush circle under the cursor
    viewport = window.canvas.viewport()
    QTest.mouseMove(viewport, viewport.rect().center())
    app.processEvents()
    window.grab().save(str(OUT))
    Image.open(OUT).convert("RGB").quantize(256).save(OUT, optimize=True)   # a 256-colour PNG: a third the size
    print(f"wrote {OUT}")
    window.close()


if __name__ == "__main__":
    main()
