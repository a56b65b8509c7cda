"""Shared helpers for the GUI tests: small real images on disk and a window on them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from PySide6.QtCore import QSettings, Qt
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
    qtbot.addWidget(window)
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
    qtbot.keyClick(window.canvas, k, modifier)


def segmented_window(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.add_paths([write_sample(tmp_path)])
    wait_segmented(qtbot, window)
    window.granularity.setValue(window.granularity.maximum() // 2)
    window.doc.undo.clear()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.canvas.setFocus()
    return window
