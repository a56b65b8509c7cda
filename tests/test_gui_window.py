"""The first window: it segments in the worker thread and shows the overlay; τ re-prunes."""
from __future__ import annotations

import numpy as np

from gui.app import build_window
from tests.gui_helpers import canvas_pixels, make_window, wait_segmented, write_sample


def test_window_segments_and_shows_overlay(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.session.add_paths([write_sample(tmp_path)])
    wait_segmented(qtbot, window)
    doc = window.doc
    assert doc.status == "done"
    assert window.engine.text() == "encoder: classic · device: cpu · method: atomwalk (auto)"
    doc.tree.check_invariants()
    assert len(window.layer_model.tree.frontier()) == len(doc.tree.frontier())
    with_overlay = canvas_pixels(window)
    window.toggle_overlay()
    bare = canvas_pixels(window)
    assert with_overlay.shape == bare.shape
    assert np.abs(with_overlay.astype(int) - bare).sum(axis=-1).astype(bool).mean() > 0.2


def test_granularity_slider_reprunes(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.session.add_paths([write_sample(tmp_path)])
    wait_segmented(qtbot, window)
    tree = window.doc.tree
    window.granularity.setValue(window.granularity.maximum())
    fine = len(tree.frontier())
    window.granularity.setValue(0)
    coarse = len(tree.frontier())
    assert coarse == 1 < fine
    tree.check_invariants()
    assert window.stage.text().endswith("1 segments")


def test_folder_argument_opens_its_images(qtbot, tmp_path):
    write_sample(tmp_path, "astronaut")
    write_sample(tmp_path, "coffee")
    window = build_window([str(tmp_path)])
    qtbot.addWidget(window)
    assert [d.name for d in window.docs] == ["astronaut.png", "coffee.png"]
    window.session.cancel_segmentation()


def test_status_bar_names_an_explicit_device_without_checking_it(qtbot, tmp_path):
    from core.settings import Settings
    window = make_window(qtbot, tmp_path, settings=Settings(encoder="diffusion", device="cuda", method="walk"))
    assert window.engine.text() == "encoder: diffusion · ssd-1b · device: cuda · method: walk"
