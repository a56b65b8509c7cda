"""Projects from the window: create, autosave after an edit, reopen, export COCO."""
from __future__ import annotations

import threading
import time

import numpy as np
from pycocotools.coco import COCO
from pycocotools import mask as mask_utils
from PySide6.QtCore import Qt, QTimer

from core import project as project_module
from gui import exporting
from gui.dialogs.export_dialog import ExportDialog
from tests.gui_helpers import make_window, wait_segmented, write_sample


def labelled_window(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.session.add_paths([write_sample(tmp_path)])
    wait_segmented(qtbot, window)
    tree = window.doc.tree
    window.granularity.setValue(window.granularity.maximum() // 2)
    front = tree.frontier()
    window.session.set_selection(front[:2])
    window.session.label_selection(window.categories[0].id)
    window.session.set_selection(front[2:3])
    window.session.label_selection(window.categories[5].id)
    return window


def test_new_project_autosave_and_reopen(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    project = window.session.new_project(tmp_path / "project")
    tree = window.doc.tree
    window.session.set_selection(tree.frontier()[3:4])
    window.session.toggle_ignore()                       # an edit after the save: autosave must catch it
    qtbot.waitUntil(window.session.autosave_idle, timeout=10_000)
    expected = (tree.frontier(), {n: tree.effective_category(n) for n in tree.frontier()},
                {n: tree.nodes[n].ignored for n in tree.frontier()}, tree.atom_map.copy())

    window.close()                  # one writer per project: the first window lets it go
    second = tmp_path / "second"
    second.mkdir()
    other = make_window(qtbot, second)
    other.session.open_project(project.folder)
    assert [d.status for d in other.docs] == ["edited"]
    assert other.doc.ready
    again = other.doc.tree
    assert (again.frontier(), {n: again.effective_category(n) for n in again.frontier()},
            {n: again.nodes[n].ignored for n in again.frontier()}) == expected[:3]
    assert np.array_equal(again.atom_map, expected[3])
    assert [c.name for c in other.categories] == [c.name for c in window.categories]


def test_autosave_writes_off_the_gui_thread(qtbot, tmp_path, monkeypatch):
    window = labelled_window(qtbot, tmp_path)
    project = window.session.new_project(tmp_path / "project")
    threads = []
    real_write = project_module.atomic_write_npz
    monkeypatch.setattr(project_module, "atomic_write_npz",
                        lambda *a: (threads.append(threading.current_thread()), real_write(*a)))
    window.session.set_selection(window.doc.tree.frontier()[:1])
    window.session.toggle_ignore()
    qtbot.waitUntil(lambda: bool(threads) and window.session.autosave_idle(), timeout=10_000)
    assert threads[0] is not threading.main_thread()
    saved = project.load_tree(window.doc.project_id).tree
    assert saved.nodes[window.selection[0]].ignored


def run_export(qtbot, monkeypatch, window, out):
    """Export the current image as COCO through the dialog; the summary box's lines."""
    shown = []
    monkeypatch.setattr("gui.dialogs.export_dialog.QMessageBox.information", lambda *a: shown.append(a[2]))
    dialog = ExportDialog(window.session, window)
    qtbot.addWidget(dialog)
    dialog.path.setText(str(out))
    with qtbot.waitSignal(dialog.ended, timeout=60_000) as ended:
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert ended.args[0], ended.args[1]
    assert shown and shown[0] == "\n".join(ended.args[1])
    return ended.args[1]


def test_export_current_image_as_coco(qtbot, tmp_path, monkeypatch):
    window = labelled_window(qtbot, tmp_path)
    out = tmp_path / "out" / "instances.json"
    lines = run_export(qtbot, monkeypatch, window, out)
    assert "3 annotations" in lines[0]
    coco = COCO(str(out))
    tree = window.doc.tree
    anns = coco.loadAnns(coco.getAnnIds())
    assert sorted(a["category_id"] for a in anns) == [1, 1, 6]
    masks = [mask_utils.decode(a["segmentation"]).astype(bool) for a in anns]
    front = tree.frontier()
    expected = sorted(int(tree.mask(n).sum()) for n in front[:3])
    assert sorted(int(m.sum()) for m in masks) == expected


def slow_coco_writer(monkeypatch, threads: list) -> None:
    """Make COCO writing take a second (a big project), noting the thread it runs on."""
    real_write = exporting.run_export

    def slow_write(*args, **kwargs):
        threads.append(threading.current_thread())
        for _ in range(20):
            time.sleep(0.05)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(exporting, "run_export", slow_write)


def test_export_runs_off_the_gui_thread(qtbot, tmp_path, monkeypatch):
    window = labelled_window(qtbot, tmp_path)
    threads, ticks = [], []
    slow_coco_writer(monkeypatch, threads)
    timer = QTimer(interval=20, timeout=lambda: ticks.append(time.monotonic()))
    timer.start()
    out = tmp_path / "out" / "instances.json"
    run_export(qtbot, monkeypatch, window, out)
    timer.stop()
    assert threads and threads[0] is not threading.main_thread()
    assert len(ticks) >= 5
    assert len(COCO(str(out)).getAnnIds()) == 3


def test_cancel_a_running_export(qtbot, tmp_path, monkeypatch):
    window = labelled_window(qtbot, tmp_path)
    threads = []
    slow_coco_writer(monkeypatch, threads)
    dialog = ExportDialog(window.session, window)
    qtbot.addWidget(dialog)
    out = tmp_path / "out" / "instances.json"
    dialog.path.setText(str(out))
    dialog.show()
    with qtbot.waitSignal(dialog.ended, timeout=60_000) as ended:
        dialog.start_export()
        assert dialog.progress.isVisible() and not dialog.format.isEnabled()
        qtbot.waitUntil(lambda: bool(threads))
        dialog.reject()                                   # the Cancel button
    assert ended.args == [False, ["export cancelled"]]
    assert not dialog.isVisible() and not out.exists()


def test_keyboard_navigation_between_images(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.session.add_paths([write_sample(tmp_path, "astronaut"), write_sample(tmp_path, "coffee")])
    wait_segmented(qtbot, window, 0)
    wait_segmented(qtbot, window, 1)
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.session.current == 1 and window.files.list.currentRow() == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert window.session.current == 0
