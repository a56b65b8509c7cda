"""The window on unreadable projects and annotation files (issue 13): a dialog, never a traceback
or an abort; a damaged annotation is set aside and the user told; a refused one is never overwritten."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gui.app
from core.project import Project
from core.tree import SegmentTree
from gui.main_window import MainWindow
from gui.session import Session
from tests.gui_helpers import make_window, write_sample
from tests.test_hostile_projects import bad_deflate_block


def image_project(tmp_path: Path) -> Project:
    """A project of one real image with a saved (flat, two-region) tree."""
    image = write_sample(tmp_path)
    width, height = Image.open(image).size
    project = Project.create(tmp_path / "proj")
    project.add_image(image, width, height)
    project.save()
    labels = np.zeros((height, width), np.int32)
    labels[:, width // 2:] = 1
    project.save_tree(1, SegmentTree.flat(labels))
    return project


def broken_project_json(folder: Path, case: str) -> None:
    data = json.loads((folder / "project.json").read_text())
    if case == "invalid json":
        (folder / "project.json").write_text("{\"schema_version\": 1, ")
        return
    if case == "nul in a path":
        data["images"][0]["path"] = "a\u0000b.png"
    elif case == "newer schema":
        data["schema_version"] = 99
    elif case == "images not a list":
        data["images"] = {"x": 1}
    (folder / "project.json").write_text(json.dumps(data))


@pytest.mark.parametrize("case", ["invalid json", "nul in a path", "newer schema", "images not a list"])
def test_gui_argument_naming_an_unreadable_project_shows_a_dialog(qtbot, tmp_path, monkeypatch, case) -> None:
    project = image_project(tmp_path)
    broken_project_json(project.folder, case)
    shown = []
    monkeypatch.setattr(gui.app.QMessageBox, "critical", lambda *args: shown.append(args[2]))
    window = gui.app.build_window([str(project.folder)])
    qtbot.addWidget(window)
    assert len(shown) == 1 and "project.json" in shown[0] and "\n" not in shown[0]
    assert window.project is None
    window.close()
    assert not window.session.worker.thread.isRunning()


def test_an_unexpected_error_while_opening_stops_the_threads_first(qtbot, tmp_path, monkeypatch) -> None:
    project = image_project(tmp_path)
    windows = []
    real_init = MainWindow.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        windows.append(self)

    def broken_open(self, folder):
        raise RuntimeError("a bug")

    monkeypatch.setattr(MainWindow, "__init__", recording_init)
    monkeypatch.setattr(Session, "open_project", broken_open)
    with pytest.raises(RuntimeError, match="a bug"):
        gui.app.build_window([str(project.folder)])
    qtbot.addWidget(windows[0])
    assert not windows[0].session.worker.thread.isRunning()      # no "QThread: Destroyed while running" abort


def test_window_tells_that_a_damaged_annotation_was_set_aside(qtbot, tmp_path, monkeypatch) -> None:
    project = image_project(tmp_path)
    path = project.annotation_path(1)
    path.write_bytes(bad_deflate_block(path.read_bytes()))
    warnings = []
    monkeypatch.setattr("gui.main_window.QMessageBox.warning", lambda *args: warnings.append(args[2]))
    window = make_window(qtbot, tmp_path)
    window.session.open_project(project.folder)
    assert len(warnings) == 1 and path.name in warnings[0] and "kept as" in warnings[0]
    assert not path.exists() and len(list(path.parent.glob(path.name + ".damaged-*"))) == 1
    assert window.docs[0].status != "error"                 # the image starts afresh


def test_window_refuses_a_newer_annotation_and_never_overwrites_it(qtbot, tmp_path, monkeypatch) -> None:
    import core.tree_file as tree_file
    from core.atomic_io import npz_bytes
    project = image_project(tmp_path)
    path = project.annotation_path(1)
    arrays = dict(np.load(path))
    arrays["meta"] = np.frombuffer(json.dumps({**json.loads(arrays["meta"].tobytes()),
                                               "version": tree_file.VERSION + 1}).encode(), np.uint8)
    newer = npz_bytes(arrays)
    path.write_bytes(newer)
    warnings = []
    monkeypatch.setattr("gui.main_window.QMessageBox.warning", lambda *args: warnings.append(args[2]))
    window = make_window(qtbot, tmp_path)
    window.session.open_project(project.folder)
    assert len(warnings) == 1 and "newer CutTree" in warnings[0]
    doc = window.docs[0]
    assert doc.status == "error" and doc.tree is None and "newer CutTree" in doc.error
    window.session.show_image(0)
    qtbot.wait(200)
    assert not window.session.worker.busy()                         # not re-segmented
    window.session.save()
    window.session.flush_autosave()
    assert path.read_bytes() == newer
