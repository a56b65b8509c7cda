"""The worker thread: the GUI stays responsive, cancel works, a corrupt image is an error status."""
from __future__ import annotations

import time

from PySide6.QtCore import QTimer

from core.pipeline import segment
from gui.segmentation import Segmented
from tests.gui_helpers import SEGMENT_TIMEOUT_MS, make_window, wait_segmented, write_sample


class SlowEncoder:
    """Pretends to be a slow encoder: sleeps in small steps, honours cancel, then segments."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def __call__(self, key, image, settings, progress, cancel):
        self.calls += 1
        steps = 20
        for i in range(steps):
            cancel.check()
            time.sleep(self.seconds / steps)
            progress("encode", (i + 1) / steps)
        return Segmented(segment(image, settings, progress, cancel), None)


def test_gui_thread_keeps_running_while_encoder_works(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path, segment=SlowEncoder(1.5))
    ticks = []
    timer = QTimer(interval=20, timeout=lambda: ticks.append(time.monotonic()))
    timer.start()
    window.session.add_paths([write_sample(tmp_path)])
    qtbot.waitUntil(lambda: window.doc.status == "working", timeout=SEGMENT_TIMEOUT_MS)
    ticks_before = len(ticks)
    qtbot.waitUntil(lambda: window.progress.value() >= 50, timeout=SEGMENT_TIMEOUT_MS)
    assert window.doc.status == "working"         # still encoding, and yet the timer fired
    assert len(ticks) - ticks_before >= 5
    window.canvas.zoom(1.5)                       # the canvas can zoom meanwhile
    wait_segmented(qtbot, window)
    timer.stop()


def test_cancel_running_segmentation(qtbot, tmp_path):
    slow = SlowEncoder(30.0)
    window = make_window(qtbot, tmp_path, segment=slow)
    window.session.add_paths([write_sample(tmp_path)])
    qtbot.waitUntil(lambda: window.doc.status == "working", timeout=SEGMENT_TIMEOUT_MS)
    assert window.cancel_button.isVisible()
    window.cancel_button.click()
    qtbot.waitUntil(lambda: window.doc.status == "not segmented", timeout=5000)
    assert "cancelled" in window.stage.text()
    assert window.doc.tree is None and not window.cancel_button.isVisible()


def test_corrupt_image_gets_error_status_while_others_work(qtbot, tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr("gui.main_window.QMessageBox.warning", lambda *args: warnings.append(args[2]))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    good = write_sample(tmp_path)
    window = make_window(qtbot, tmp_path)
    window.session.add_paths([bad, good])
    qtbot.waitUntil(lambda: window.docs[0].status == "error", timeout=SEGMENT_TIMEOUT_MS)
    assert "broken.png" in window.docs[0].error
    assert "[error]" in window.files.status_text(0)
    assert warnings and "broken.png" in warnings[0]
    wait_segmented(qtbot, window, 1)               # prefetched despite the error
    window.session.step_image(1)
    assert window.doc is window.docs[1] and window.doc.status == "done"
    assert window.canvas.layer_visible("overlay")
