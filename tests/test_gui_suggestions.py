"""Label suggestions in the window (issue 14, item 4), through real key presses and clicks:
Enter accepts, Delete rejects, Ctrl+Enter accepts every confident suggestion on the image or
the project; each is undoable, survives save and reopen, and never replaces a label the
annotator set or a category they rejected; suggestions are made off the GUI thread."""
from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from core.project import Project
from gui.dialogs.accept_dialog import AcceptDialog
from tests.gui_helpers import (SEGMENT_TIMEOUT_MS, click, inner_pixel, key, make_window, segmented_window,
                               wait_segmented, write_sample)
from tests.test_tree import pixel_categories

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def wait_suggestions(qtbot, window) -> None:
    """Until the background refresh has delivered (the shown image has live suggestions)."""
    qtbot.waitUntil(lambda: not window.session.suggester.busy(), timeout=SEGMENT_TIMEOUT_MS)
    qtbot.wait(20)          # the last image's answer is queued behind the end of the run


def live(tree) -> list[int]:
    return [n for n in tree.frontier() if tree.live_suggestion(n) is not None]


def labelled_window(qtbot, tmp_path, project: bool = True):
    """A segmented photo in a project, its two largest regions labelled 1 and 2 with keys."""
    window = segmented_window(qtbot, tmp_path)
    if project:
        window.session.new_project(tmp_path / "project")
    tree = window.doc.tree
    for region, digit in zip(sorted(tree.frontier(), key=tree.area, reverse=True)[:2], (Qt.Key.Key_1, Qt.Key.Key_2)):
        click(qtbot, window, region)
        key(qtbot, window, digit)
    wait_suggestions(qtbot, window)
    assert live(tree), "no suggestion after labelling two categories"
    return window


def categories(tree) -> dict[int, object]:
    return {n: tree.effective_category(n) for n in tree.frontier()}


def bulk_accept(qtbot, window, confidence: float, every_image: bool, as_one: bool = False) -> None:
    """Ctrl+Enter, then type the confidence, pick the scope with a click (and tick "merge
    siblings" when `as_one` asks for a change) and press Accept."""
    def when_open() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, AcceptDialog):
            QTimer.singleShot(10, when_open)
            return
        spin = dialog.confidence
        spin.selectAll()
        qtbot.keyClicks(spin, f"{confidence:.2f}")
        on_box(qtbot, dialog.every_image if every_image else dialog.this_image)
        if dialog.as_one.isChecked() != as_one:
            on_box(qtbot, dialog.as_one)
        ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, when_open)
    key(qtbot, window, Qt.Key.Key_Return, CTRL)


def on_box(qtbot, button) -> None:
    """A click on a radio button's or check box's indicator (a button's middle may lie past its text)."""
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def test_suggestions_are_drawn_apart_from_labels_and_enter_accepts_undoably(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    tree = window.doc.tree
    region = max(live(tree), key=tree.area)
    suggestion = tree.live_suggestion(region)
    name = window.session.category_name(suggestion.category)
    cell = window.layer_model.index_of(region, 1)
    assert cell.data() == f"? {name} {suggestion.confidence:.2f}" and cell.data(Qt.ItemDataRole.FontRole).italic()
    inside = inner_pixel(tree, region)                    # not on the outline, drawn alike either way
    faint = window.frontier_overlay.pixels[inside] >> 24
    click(qtbot, window, region)
    key(qtbot, window, Qt.Key.Key_Return)
    assert tree.nodes[region].category == suggestion.category
    assert window.layer_model.index_of(region, 1).data() == name
    assert not window.layer_model.index_of(region, 1).data(Qt.ItemDataRole.FontRole).italic()
    assert window.frontier_overlay.pixels[inside] >> 24 > faint      # drawn as a label now
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert tree.nodes[region].category is None
    key(qtbot, window, Qt.Key.Key_Z, CTRL | SHIFT)
    assert tree.nodes[region].category == suggestion.category


def rejected_largest(qtbot, tmp_path):
    """A labelled window whose largest suggested region's suggestion was rejected with Delete:
    (window, tree, region, the refused category)."""
    window = labelled_window(qtbot, tmp_path)
    tree = window.doc.tree
    region = max(live(tree), key=tree.area)
    refused = tree.live_suggestion(region).category
    click(qtbot, window, region)
    key(qtbot, window, Qt.Key.Key_Delete)
    return window, tree, region, refused


def test_delete_rejects_the_category_for_good_and_undo_brings_it_back(qtbot, tmp_path):
    window, tree, region, refused = rejected_largest(qtbot, tmp_path)
    assert tree.nodes[region].rejected == (refused,) and tree.nodes[region].category is None
    wait_suggestions(qtbot, window)
    again = tree.live_suggestion(region)
    assert again is None or again.category != refused          # the next best, never the refused one
    key(qtbot, window, Qt.Key.Key_Return)
    assert tree.effective_category(region) != refused
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert tree.nodes[region].rejected == () and tree.nodes[region].category is None


def test_enter_and_delete_keep_their_meaning_where_there_is_nothing_to_answer(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    tree = window.doc.tree
    labelled = next(n for n in tree.frontier() if tree.nodes[n].category is not None)
    before, steps = categories(tree), window.doc.undo.count()
    click(qtbot, window, labelled)
    key(qtbot, window, Qt.Key.Key_Delete)                     # a label is not a suggestion: kept
    key(qtbot, window, Qt.Key.Key_Return)
    assert categories(tree) == before and window.doc.undo.count() == steps
    assert "no label suggestion" in window.stage.text()
    # Enter in the category search box labels by the category typed there, not the suggestion
    region = max(live(tree), key=tree.area)
    click(qtbot, window, region)
    panel = window.category_panel
    panel.search.setFocus()
    qtbot.keyClicks(panel.search, "vehicle")
    qtbot.keyClick(panel.search, Qt.Key.Key_Return)
    vehicle = next(c.id for c in window.categories if c.name == "vehicle")
    assert tree.nodes[region].category == vehicle


def test_bulk_accept_on_the_image_and_on_the_project_is_undoable_and_survives_reopening(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    window.session.add_paths([write_sample(tmp_path, "coffee")])
    wait_segmented(qtbot, window, 1)
    wait_suggestions(qtbot, window)
    window.session.show_image(0)
    first, second = window.docs[0].tree, window.docs[1].tree
    assert live(second), "the other project image got no suggestions"
    user = dict(categories(first))
    threshold = round(float(np.median([first.live_suggestion(n).confidence for n in live(first)])), 2)
    expected = {n for n in live(first) if first.live_suggestion(n).confidence >= threshold}
    bulk_accept(qtbot, window, threshold, every_image=False)
    accepted = {n for n in first.frontier() if first.nodes[n].category is not None and user[n] is None}
    assert accepted == expected and not any(second.nodes[n].category for n in second.frontier())
    assert all(categories(first)[n] == c for n, c in user.items() if c is not None)     # user labels kept
    assert window.qsettings.value("suggestions/min_confidence", type=float) == threshold
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert categories(first) == user
    bulk_accept(qtbot, window, 0.0, every_image=True)
    assert all(c is not None for c in categories(second).values())
    assert window.qsettings.value("suggestions/every_image", type=bool)
    project_labels = [categories(first), categories(second)]
    # save, close, reopen: the accepted labels are there and Ctrl+Z still undoes the bulk accept
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    folder = window.project.folder
    key(qtbot, window, Qt.Key.Key_Q, CTRL)
    (tmp_path / "again").mkdir()
    other = make_window(qtbot, tmp_path / "again")
    other.session.open_project(folder)
    wait_segmented(qtbot, other)
    assert [categories(d.tree) for d in other.docs] == project_labels
    key(qtbot, other, Qt.Key.Key_Z, CTRL)
    assert categories(other.doc.tree) == user


def sibling_pair(tree) -> list[int]:
    """Two shown sibling regions with the same live suggestion."""
    seen: dict = {}
    for n in live(tree):
        pair = seen.setdefault((tree.nodes[n].parent, tree.live_suggestion(n).category), [])
        pair.append(n)
        if len(pair) == 2:
            return pair
    raise AssertionError("no two siblings are suggested alike")


def test_accepting_as_one_merges_siblings_suggested_alike_in_one_undo_step(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    tree = window.doc.tree
    first, second = sibling_pair(tree)
    category = tree.live_suggestion(first).category
    shown, steps, pixel = len(tree.frontier()), window.doc.undo.count(), inner_pixel(tree, first)
    click(qtbot, window, first)
    click(qtbot, window, second, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, window, Qt.Key.Key_Return, SHIFT)
    merged = tree.node_at(*pixel)
    assert tree.effective_category(merged) == category and len(tree.frontier()) == shown - 1
    assert window.doc.undo.count() == steps + 1
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert len(tree.frontier()) == shown and tree.live_suggestion(first) is not None

    # bulk accept as one: the same label on every pixel as accepting one by one, in fewer regions
    bulk_accept(qtbot, window, 0.0, every_image=False)
    separately = (pixel_categories(tree), len(tree.frontier()))
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    bulk_accept(qtbot, window, 0.0, every_image=False, as_one=True)
    assert window.qsettings.value("suggestions/as_one", type=bool)
    assert np.array_equal(pixel_categories(tree), separately[0]) and len(tree.frontier()) < separately[1]
    tree.check_invariants()
    window.session.flush_autosave()
    saved = Project.open(window.project.folder).load_tree(window.doc.project_id).tree
    assert np.array_equal(pixel_categories(saved), separately[0]) and saved.frontier() == tree.frontier()


def test_a_rejection_survives_save_and_reopen(qtbot, tmp_path):
    window, tree, region, refused = rejected_largest(qtbot, tmp_path)
    window.session.flush_autosave()
    saved = Project.open(window.project.folder).load_tree(window.doc.project_id)
    assert saved.tree.nodes[region].rejected == (refused,)
    assert saved.tree.suggestions, "the shown image's suggestions are saved with it"


def test_bulk_accept_never_replaces_a_label_or_a_rejected_category(qtbot, tmp_path):
    window = labelled_window(qtbot, tmp_path)
    tree = window.doc.tree
    region, refused = max(live(tree), key=tree.area), None
    refused = tree.live_suggestion(region).category
    other = next(n for n in live(tree) if n != region)
    click(qtbot, window, region)
    key(qtbot, window, Qt.Key.Key_Delete)
    own = next(c.id for c in window.categories if c.id != tree.live_suggestion(other).category)
    click(qtbot, window, other)
    window.session.label_selection(own)          # as the category panel does
    # accept everything at once, before the refresh after these edits has come back
    window.session.accept_confident(0.0, every_image=False)
    assert tree.nodes[other].category == own and tree.effective_category(region) != refused


def test_suggestions_are_made_off_the_gui_thread_and_follow_the_last_label(qtbot, tmp_path, monkeypatch):
    window = labelled_window(qtbot, tmp_path, project=False)
    tree, suggester = window.doc.tree, window.session.suggester._suggester
    fitted_on, release = [], threading.Event()
    fit = suggester.fit

    def slow_fit() -> bool:
        fitted_on.append(threading.current_thread())
        release.wait(timeout=30)
        return fit()
    monkeypatch.setattr(suggester, "fit", slow_fit)
    regions = sorted(live(tree), key=tree.area, reverse=True)[:2]
    click(qtbot, window, regions[0])
    key(qtbot, window, Qt.Key.Key_3)              # a label: a refresh starts and blocks in the background
    qtbot.waitUntil(lambda: bool(fitted_on))
    click(qtbot, window, regions[1])
    key(qtbot, window, Qt.Key.Key_3)              # the window answers while the refresh is blocked
    assert tree.nodes[regions[1]].category is not None and window.session.suggester.busy()
    release.set()
    wait_suggestions(qtbot, window)
    assert fitted_on[0] is not threading.main_thread() and len(fitted_on) == 2     # the waiting run came after
    third = next(c.id for c in window.categories if c.name == "vehicle")
    assert third in {s.category for s in tree.suggestions.values()}, "the new category is not suggested"
