"""Re-take docs/screenshot.png: the main window on the sample photos, a few regions labelled.

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
    regions = sorted(tree.frontier(), key=tree.area, reverse=True)
    for region, category in zip(regions[:4], (7, 9, 9, 9)):
        window.session.set_selection([region])
        window.session.label_by_key(category)
    window.session.set_selection([regions[1]])
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
