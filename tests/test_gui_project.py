"""Projects from the window: create, autosave after an edit, reopen, export COCO."""
from __future__ import annotations

import numpy as np
from pycocotools.coco import COCO
from pycocotools import mask as mask_utils
from PySide6.QtCore import Qt

from gui.dialogs.export_dialog import ExportDialog
from tests.gui_helpers import make_window, wait_segmented, write_sample


def labelled_window(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.add_paths([write_sample(tmp_path)])
    wait_segmented(qtbot, window)
    tree = window.doc.tree
    window.granularity.setValue(window.granularity.maximum() // 2)
    front = tree.frontier()
    window.set_selection(front[:2])
    window.label_selection(window.categories[0].id)
    window.set_selection(front[2:3])
    window.label_selection(window.categories[5].id)
    return window


def test_new_project_autosave_and_reopen(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    project = window.new_project(tmp_path / "project")
    tree = window.doc.tree
    window.set_selection(tree.frontier()[3:4])
    window.toggle_ignore()                       # an edit after the save: autosave must catch it
    qtbot.waitUntil(lambda: not window.autosaver.pending(), timeout=10_000)
    expected = (tree.frontier(), {n: tree.effective_category(n) for n in tree.frontier()},
                {n: tree.nodes[n].ignored for n in tree.frontier()}, tree.atom_map.copy())

    second = tmp_path / "second"
    second.mkdir()
    other = make_window(qtbot, second)
    other.open_project(project.folder)
    assert [d.status for d in other.docs] == ["edited"]
    assert other.doc.ready
    again = other.doc.tree
    assert (again.frontier(), {n: again.effective_category(n) for n in again.frontier()},
            {n: again.nodes[n].ignored for n in again.frontier()}) == expected[:3]
    assert np.array_equal(again.atom_map, expected[3])
    assert [c.name for c in other.categories] == [c.name for c in window.categories]


def test_export_current_image_as_coco(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    dialog = ExportDialog(window)
    qtbot.addWidget(dialog)
    out = tmp_path / "out" / "instances.json"
    dialog.path.setText(str(out))
    lines = dialog.run_export()
    assert "3 annotations" in lines[0]
    coco = COCO(str(out))
    tree = window.doc.tree
    anns = coco.loadAnns(coco.getAnnIds())
    assert sorted(a["category_id"] for a in anns) == [1, 1, 6]
    masks = [mask_utils.decode(a["segmentation"]).astype(bool) for a in anns]
    front = tree.frontier()
    expected = sorted(int(tree.mask(n).sum()) for n in front[:3])
    assert sorted(int(m.sum()) for m in masks) == expected


def test_keyboard_navigation_between_images(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.add_paths([write_sample(tmp_path, "astronaut"), write_sample(tmp_path, "coffee")])
    wait_segmented(qtbot, window, 0)
    wait_segmented(qtbot, window, 1)
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.current == 1 and window.files.list.currentRow() == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert window.current == 0
