"""Shared helpers for the GUI tests: small real images on disk and a window on them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox
from scipy.ndimage import distance_transform_edt

from core.settings import Settings
from gui.main_window import MainWindow

SEGMENT_TIMEOUT_MS = 60_000
TEST_SETTINGS = Settings(classic_tokens=24)


def write_sample(folder: Path, name: str = "astronaut", side: int = 96) -> Path:
    """A real skimage.data photo, downscaled, written as PNG."""
    image = Image.fromarray(getattr(skimage.data, name)()[..., :3])
    image.thumbnail((side, side))
    path = folder / f"{name}.png"
    image.save(path)
    return path


def make_window(qtbot, tmp_path: Path, segment=None, settings: Settings = TEST_SETTINGS) -> MainWindow:
    """A real main window with isolated QSettings."""
    qsettings = QSettings(str(tmp_path / "cuttree.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, segment=segment, qsettings=qsettings)
    # closing at the end of a test discards unsaved edits instead of asking (tests that ask use answer())
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w.session, "ask", lambda *question: "Discard"))
    window.show()
    return window


def wait_segmented(qtbot, window: MainWindow, index: int = 0) -> None:
    qtbot.waitUntil(lambda: window.docs[index].tree is not None or window.docs[index].status == "error",
                    timeout=SEGMENT_TIMEOUT_MS)
    assert window.docs[index].tree is not None, window.docs[index].error


def canvas_pixels(window: MainWindow) -> np.ndarray:
    image = window.canvas.grab().toImage().convertToFormat(window.canvas.grab().toImage().Format.Format_RGB888)
    ptr = image.constBits()
    return np.frombuffer(ptr, np.uint8, image.sizeInBytes()).reshape(image.height(), image.bytesPerLine())[
        :, :image.width() * 3].copy()


def state(tree):
    """What an undo must restore: the frontier, categories, flags."""
    return (tree.frontier(), {n: (tree.nodes[n].category, tree.nodes[n].ignored, tree.nodes[n].expanded)
                              for n in tree.nodes})


def inner_pixel(tree, node_id):
    """The pixel of a region farthest from its border (a safe place to click)."""
    dist = distance_transform_edt(np.pad(tree.mask(node_id), 1))[1:-1, 1:-1]
    return np.unravel_index(int(np.argmax(dist)), dist.shape)


def click(qtbot, window, node_id, modifier=Qt.KeyboardModifier.NoModifier):
    row, col = inner_pixel(window.doc.tree, node_id)
    pos = window.canvas.view_pos_of(int(row), int(col)).toPoint()
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, modifier, pos)


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier):
    """A key press on the canvas of the (active: a closed question box leaves it inactive) window."""
    if not window.isActiveWindow():
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window.canvas, k, modifier)


def segmented_window(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.session.add_paths([write_sample(tmp_path)])
    wait_segmented(qtbot, window)
    window.granularity.setValue(window.granularity.maximum() // 2)
    qtbot.waitUntil(lambda: not window.panel_pending())      # the layer panel follows when it rests
    window.doc.undo.clear()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.canvas.setFocus()
    return window


def answer(qtbot, text: str, asked: list | None = None) -> None:
    """Click the button labelled `text` in the next question box that opens (a real click);
    the question's text is appended to `asked`."""
    def click_when_open() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(10, click_when_open)
            return
        if asked is not None:
            asked.append(box.text())
        button = next(b for b in box.findChildren(QAbstractButton) if b.text().replace("&", "") == text)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, click_when_open)
