"""Drive the real window with clicks and keys: select, merge, split, label, undo/redo."""
from __future__ import annotations

import threading
import time

from PySide6.QtCore import Qt

from tests.gui_helpers import click, key, segmented_window, state


def sibling_pair(tree):
    """Two frontier regions with the same parent."""
    front = set(tree.frontier())
    for node in tree.nodes.values():
        kids = [c for c in node.children if c in front]
        if len(kids) >= 2:
            return kids[0], kids[1]
    raise AssertionError("no frontier siblings")


def test_click_selects_in_canvas_and_layer_panel(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    a, b = tree.frontier()[:2]
    click(qtbot, window, a)
    assert window.selection == [a]
    assert window.layers.selected_ids() == [a]
    click(qtbot, window, b, Qt.KeyboardModifier.ShiftModifier)
    assert window.selection == [a, b]
    assert sorted(window.layers.selected_ids()) == sorted([a, b])
    # and back: selecting in the tree selects on the canvas
    window.layers.show_selection([b])
    window.layers.selected.emit(window.layers.selected_ids())
    assert window.selection == [b]


def test_merge_split_label_undo_redo_with_keys(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    start = state(tree)
    a, b = sibling_pair(tree)
    click(qtbot, window, a)
    click(qtbot, window, b, Qt.KeyboardModifier.ShiftModifier)
    key(qtbot, window, Qt.Key.Key_J)
    tree.check_invariants()
    merged = window.selection
    assert len(merged) == 1 and tree.is_frontier(merged[0])
    assert a not in tree.frontier() and b not in tree.frontier()
    assert set(tree.nodes[merged[0]].atoms) == set(tree.nodes[a].atoms) | set(tree.nodes[b].atoms)
    key(qtbot, window, Qt.Key.Key_1)
    assert tree.effective_category(merged[0]) == window.categories[0].id
    key(qtbot, window, Qt.Key.Key_J, Qt.KeyboardModifier.AltModifier)     # split
    tree.check_invariants()
    assert len(window.selection) >= 2 and all(tree.is_frontier(n) for n in window.selection)
    key(qtbot, window, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)    # go to parent
    assert window.selection == [merged[0]]
    after = state(tree)
    assert window.doc.undo.count() == 3
    assert window.history.model().rowCount() == 4     # "segmented" + 3 edits
    for _ in range(3):
        key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert state(tree) == start
    tree.check_invariants()
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    key(qtbot, window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert state(tree) == after
    assert window.files.status_text(0).endswith("[edited]")


def test_split_beyond_atoms_and_ignore(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    leaf = max((n for n in tree.nodes.values() if not n.children), key=lambda n: tree.area(n.id)).id
    window.session.set_selection([leaf])
    atoms = tree.n_atoms
    key(qtbot, window, Qt.Key.Key_S)                       # cut in the background ...
    assert "cutting" in window.stage.text() and not tree.nodes[leaf].children
    qtbot.waitUntil(lambda: bool(tree.nodes[leaf].children), timeout=10_000)   # ... then split
    assert tree.n_atoms > atoms and window.selection == tree.nodes[leaf].children
    tree.check_invariants()
    key(qtbot, window, Qt.Key.Key_I)
    assert all(tree.nodes[n].ignored for n in window.selection)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert tree.n_atoms == atoms and not tree.nodes[leaf].children
    tree.check_invariants()


def test_a_leaf_cut_that_arrives_after_another_edit_is_not_applied(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    leaves = [n for n in tree.frontier() if not tree.nodes[n].children]
    window.session.set_selection([leaves[0]])
    window.session.split_selection()
    window.session.split_selection()                                   # one cut at a time
    assert "still cutting" in window.stage.text()
    before = state(tree)
    window.session.set_selection([leaves[1]])
    window.session.label_by_key(1)                # an edit while the cut runs (no event handled before it)
    labelled = state(tree)
    assert labelled != before
    qtbot.waitUntil(lambda: window.leaf_cuts.pending is None, timeout=10_000)
    qtbot.wait(10)
    assert "changed while the region was being cut" in window.stage.text()
    assert state(tree) == labelled and not tree.nodes[leaves[0]].children
    window.session.set_selection([leaves[0]])
    window.session.split_selection()                                   # asked again: done
    qtbot.waitUntil(lambda: bool(tree.nodes[leaves[0]].children), timeout=10_000)
    tree.check_invariants()


def test_a_leaf_cut_done_before_its_callback_is_added_still_arrives_later(qtbot, tmp_path):
    """A cut that finishes at once is applied through the event loop, like any other."""
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    leaf = next(n for n in tree.frontier() if not tree.nodes[n].children)
    labels = window.doc.cutter(tree.mask(leaf))
    window.doc.cutter = lambda mask: labels
    real_submit = window.leaf_cuts._pool.submit

    def finished_at_once(fn, *args):
        future = real_submit(fn, *args)
        future.result()                  # done before `start` adds its callback
        return future
    window.leaf_cuts._pool.submit = finished_at_once
    window.session.set_selection([leaf])
    window.session.split_selection()
    assert not tree.nodes[leaf].children and "cutting" in window.stage.text()
    qtbot.waitUntil(lambda: bool(tree.nodes[leaf].children), timeout=5_000)


def test_closing_the_window_during_a_leaf_cut_drops_the_cut(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    leaf = next(n for n in tree.frontier() if not tree.nodes[n].children)
    started = threading.Event()
    cutter = window.doc.cutter

    def slow_cut(mask):
        started.set()
        time.sleep(0.3)
        return cutter(mask)
    window.doc.cutter = slow_cut
    window.session.set_selection([leaf])
    window.session.split_selection()
    assert started.wait(5)
    window.close()
    time.sleep(0.5)                      # the cut ends after the window closed: nothing is applied
    qtbot.wait(50)
    assert not tree.nodes[leaf].children and window.doc.undo.count() == 0


def test_refused_edit_explains_itself(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    window.session.set_selection(window.doc.tree.frontier()[:1])
    key(qtbot, window, Qt.Key.Key_M)
    assert "at least two" in window.stage.text()
    assert window.doc.undo.count() == 0
