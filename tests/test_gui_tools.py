"""Brush and eraser, drag-to-regroup and the category manager, driven through the real window."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox

from gui.layer_model import shown_structure
from tests.gui_helpers import (answer, click, inner_pixel, key, make_window, segmented_window, state, wait_segmented,
                               write_sample)

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


def drag(qtbot, window, pixels):
    """Press at the first atom-map pixel, move through the others, release at the last."""
    viewport = window.canvas.viewport()
    points = [window.canvas.view_pos_of(int(r), int(c)).toPoint() for r, c in pixels]
    qtbot.mousePress(viewport, LEFT, NO_MOD, points[0])
    for point in points[1:]:
        qtbot.mouseMove(viewport, point)
    qtbot.mouseRelease(viewport, LEFT, NO_MOD, points[-1])


def two_regions(tree):
    """The two largest frontier regions."""
    front = sorted(tree.frontier(), key=tree.area, reverse=True)
    return front[0], front[1]


def test_brush_stroke_moves_pixels_into_the_selected_region_as_one_undo_step(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    start, atoms = state(tree), tree.atom_map.copy()
    a, b = two_regions(tree)
    area_a, area_b = tree.area(a), tree.area(b)
    click(qtbot, window, a)
    key(qtbot, window, Qt.Key.Key_B)
    assert window.canvas.tool == "brush" and window.actions_by_name["brush"].isChecked()
    radius = window.canvas.brush_radius
    key(qtbot, window, Qt.Key.Key_BracketLeft)
    assert window.canvas.brush_radius < radius
    key(qtbot, window, Qt.Key.Key_BracketRight)
    assert window.canvas.brush_radius == radius
    ra, rb = inner_pixel(tree, a), inner_pixel(tree, b)
    path = [(ra[0] + (rb[0] - ra[0]) * t, ra[1] + (rb[1] - ra[1]) * t) for t in np.linspace(0, 1, 6)]
    drag(qtbot, window, path)
    tree.check_invariants()
    assert tree.node_at(*rb) == a                    # the stroke's end, inside b, now belongs to a
    assert tree.area(a) > area_a and tree.area(b) < area_b
    assert window.doc.undo.count() == 1 and window.doc.undo.text(0) == "brush"
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(tree.atom_map, atoms) and state(tree) == start
    tree.check_invariants()
    key(qtbot, window, Qt.Key.Key_Escape)
    assert window.canvas.tool == "select" and window.actions_by_name["select_tool"].isChecked()


def test_eraser_gives_the_selected_region_s_pixels_to_a_neighbour(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    start, atoms = state(tree), tree.atom_map.copy()
    a, _ = two_regions(tree)
    area_a = tree.area(a)
    click(qtbot, window, a)
    key(qtbot, window, Qt.Key.Key_E)
    assert window.canvas.tool == "eraser"
    row, col = inner_pixel(tree, a)
    drag(qtbot, window, [(row, col), (row, col + 1)])
    tree.check_invariants()
    assert tree.node_at(row, col) != a and tree.area(a) < area_a
    assert window.doc.undo.count() == 1
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(tree.atom_map, atoms) and state(tree) == start


def drop(window, node_ids, target):
    """What the layer panel does on a drop: the dragged rows' mime data onto the target row."""
    model = window.layer_model
    data = model.mimeData([model.index_of(n) for n in node_ids])
    return model.dropMimeData(data, Qt.DropAction.MoveAction, -1, 0, model.index_of(target))


def test_drag_in_the_layer_panel_regroups_and_refuses_a_drop_into_a_descendant(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree = window.doc.tree
    start, front = state(tree), tree.frontier()
    moved, target = front[0], front[-1]
    assert window.layers.dragEnabled() and window.layer_model.flags(window.layer_model.index_of(moved)) \
        & Qt.ItemFlag.ItemIsDragEnabled
    assert drop(window, [moved], target)
    tree.check_invariants()
    assert tree.nodes[moved].parent == target and window.doc.undo.count() == 1
    assert window.layer_model.row_node(moved) in (moved, target)   # a part of the target now
    assert_panel_mirrors(window)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert state(tree) == start
    outer = next(n for n in tree.frontier() if tree.nodes[n].children)
    inner = tree.nodes[outer].children[0]                  # below the segments: no row, the tree refuses
    assert not window.layer_model.on_regroup([outer], inner)
    assert "sub-regions" in window.stage.text() and window.doc.undo.count() == 1
    assert not drop(window, [tree.root], outer) and state(tree) == start


def test_category_manager_adds_renames_recolours_reorders_and_deletes(qtbot, tmp_path, monkeypatch):
    window = segmented_window(qtbot, tmp_path)
    project = window.session.new_project(tmp_path / "project")
    panel, tree = window.category_panel, window.doc.tree
    region = tree.frontier()[0]
    first = window.categories[0]
    click(qtbot, window, region)
    key(qtbot, window, Qt.Key.Key_1)
    assert tree.effective_category(region) == first.id

    monkeypatch.setattr("gui.category_panel.QInputDialog.getText", lambda *a, **k: ("lesion", True))
    panel.buttons["add"].click()
    added = window.categories[-1]
    assert added.name == "lesion" and added.id not in {c.id for c in window.categories[:-1]}
    panel.rename(added.id, "tumour")
    panel.recolor(added.id, (10, 20, 30))
    for _ in range(len(window.categories)):
        panel.move(added.id, -1)
    assert window.categories[0] == replace(added, name="tumour", color=(10, 20, 30))
    assert panel.list.item(0).text().startswith("1  tumour")
    key(qtbot, window, Qt.Key.Key_1)                      # number keys follow the new order
    assert tree.effective_category(region) == added.id
    assert window.layer_model.data(window.layer_model.index_of(region, 1)) == "tumour"
    stored = type(project).open(project.folder).categories
    assert [(c.id, c.name, c.color) for c in stored] == [(c.id, c.name, c.color) for c in window.categories]

    answer(qtbot, "Delete category")
    window.session.delete_category(added.id)
    assert added.id not in {c.id for c in window.categories}
    assert tree.effective_category(region) is None
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert tree.effective_category(region) == added.id   # the region's label comes back with undo
    assert panel.add("other").id > added.id               # an id still used by a region is not reused



def test_layer_panel_keeps_its_expansion_across_structure_changes(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree, panel, model = window.doc.tree, window.layers, window.layer_model
    front = tree.frontier()
    a, b = front[0], front[-1]
    kept = next(n for n in tree.nodes if n != tree.root and not tree.is_frontier(n) and tree.nodes[n].expanded
                and not {a, b} & set(tree.descendants(n)))
    window.session.set_selection([kept])
    window.session.label_by_key(1)                           # a labelled group of segments: a row with rows
    assert model.rowCount(model.index_of(kept)) > 0
    panel.expand(model.index_of(kept))
    window.session.set_selection([a, b])
    window.session.merge_selection()                        # not siblings: a new group node (structure change)
    tree.check_invariants()
    group = window.selection[0]
    assert tree.nodes[group].children == [a, b]
    assert model.index_of(a).parent() == model.index_of(group)
    assert kept not in tree.nodes or panel.isExpanded(model.index_of(kept))
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert group not in tree.nodes and model.index_of(a).parent() != model.index_of(group)
    assert kept not in tree.nodes or panel.isExpanded(model.index_of(kept))


def test_loading_a_label_set_keeps_used_categories_and_reports_a_bad_file(qtbot, tmp_path, monkeypatch):
    window = segmented_window(qtbot, tmp_path)
    project = window.session.new_project(tmp_path / "project")
    panel, tree = window.category_panel, window.doc.tree
    region = tree.frontier()[0]
    click(qtbot, window, region)
    key(qtbot, window, Qt.Key.Key_2)
    used = window.categories[1]
    label_set = tmp_path / "cells.json"
    label_set.write_text('{"categories": [{"id": 1, "name": "nucleus", "color": [200, 0, 0]},'
                         ' {"id": 7, "name": "membrane", "isthing": false}]}')
    monkeypatch.setattr("gui.category_panel.QFileDialog.getOpenFileName", lambda *a, **k: (str(label_set), ""))
    panel.buttons["load"].click()
    assert [(c.id, c.name) for c in window.categories] == [(1, "nucleus"), (7, "membrane"), (used.id, used.name)]
    assert panel.list.item(0).text().startswith("1  nucleus")
    assert window.layer_model.data(window.layer_model.index_of(region, 1)) == used.name
    assert [c.name for c in type(project).open(project.folder).categories] == ["nucleus", "membrane", used.name]

    bad = tmp_path / "broken.json"
    bad.write_text('{"categories": [{"id": "one", "name": "x"}]}')
    warnings = []
    monkeypatch.setattr("gui.category_panel.QFileDialog.getOpenFileName", lambda *a, **k: (str(bad), ""))
    monkeypatch.setattr("gui.category_panel.QMessageBox.warning", lambda *a: warnings.append(a[2]))
    panel.buttons["load"].click()
    assert len(warnings) == 1 and "broken.json" in warnings[0]
    assert [c.name for c in window.categories] == ["nucleus", "membrane", used.name]


def assert_panel_mirrors(window):
    """The rows are a fresh build of the compacted tree: every segment, every marked node and
    the root has one row under its nearest such ancestor's row, in the tree's order, showing
    its name, category, area and cost, bold exactly when it is a segment, checked when visible;
    no other node has a row."""
    tree, model = window.doc.tree, window.layer_model
    bold = Qt.ItemDataRole.FontRole
    assert model.rowCount() == 1 and model.node_id(model.index(0, 0)) == tree.root
    _, children, _ = shown_structure(tree, set(tree.frontier()))
    assert set(tree.frontier()) <= children.keys()
    for nid, node in tree.nodes.items():
        index = model.index_of(nid)
        assert index.isValid() == (nid in children)
        if not index.isValid():
            continue
        assert model.node_id(index) == nid
        assert [model.node_id(model.index(r, 0, index)) for r in range(model.rowCount(index))] == children[nid]
        texts = tuple(model.data(model.index_of(nid, c)) for c in range(4))
        assert texts == model._texts(nid)
        font = model.data(index, bold)
        assert (font is not None and font.bold()) == tree.is_frontier(nid)
        checked = Qt.CheckState(model.data(index, Qt.ItemDataRole.CheckStateRole)) == Qt.CheckState.Checked
        assert checked == node.visible


def test_layer_panel_mirrors_the_tree_through_edits_undo_and_a_checkbox_click(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree, panel = window.doc.tree, window.layers
    rng = np.random.default_rng(2)
    assert_panel_mirrors(window)
    for step in range(24):
        front = tree.frontier()
        kind = step % 6
        if kind == 0:
            window.session.set_selection([int(n) for n in rng.choice(front, 2, replace=False)])
            window.session.merge_selection()
        elif kind == 1:
            inner = [n for n in front if tree.nodes[n].children]
            if inner:
                window.session.set_selection([inner[0]])
                window.session.split_selection()
        elif kind == 2:
            window.session.set_selection([int(rng.choice(front))])
            window.session.label_by_key(int(rng.integers(1, 4)))
        elif kind == 3:
            window.granularity.setValue(int(rng.integers(window.granularity.maximum())))
        elif kind == 4:
            moved, target = (int(n) for n in rng.choice(front, 2, replace=False))
            window.session.regroup([moved], target)
        else:
            window.undo_group.undo()
        tree.check_invariants()
        qtbot.waitUntil(lambda: not window.panel_pending())    # a granularity change: when it rests
        assert_panel_mirrors(window)
    while window.doc.undo.canUndo():
        window.undo_group.undo()
    qtbot.waitUntil(lambda: not window.panel_pending())
    assert_panel_mirrors(window)

    shown = tree.frontier()[0]
    index = window.layer_model.index_of(shown)
    panel.scrollTo(index)
    rect = panel.visualRect(index)
    box = panel.style().subElementRect(panel.style().SubElement.SE_ItemViewItemCheckIndicator, _item_option(panel, index), panel)
    qtbot.mouseClick(panel.viewport(), LEFT, NO_MOD, box.center() if box.isValid() else rect.topLeft())
    assert not tree.nodes[shown].visible and window.doc.undo.count() == 1
    assert_panel_mirrors(window)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert tree.nodes[shown].visible
    assert_panel_mirrors(window)


def _item_option(view, index):
    """The style option the view paints `index` with (where its checkbox is)."""
    from PySide6.QtWidgets import QStyleOptionViewItem
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    view.itemDelegateForIndex(index).initStyleOption(option, index)
    return option


def test_layer_panel_on_screen_matches_a_fresh_render_after_granularity_jumps(qtbot, tmp_path, monkeypatch):
    """Rows whose boldness changes are repainted where they are on screen (the panel repaints
    only those rows, not itself)."""
    monkeypatch.setattr("gui.layer_model.PARTIAL_REFRESH_MAX", 0)     # always the batched path
    window = segmented_window(qtbot, tmp_path)
    panel = window.layers
    panel.expandAll()
    viewport = panel.viewport()

    def on_screen_equals_fresh() -> bool:
        corner = viewport.mapTo(window, QPoint(0, 0))
        shot = window.screen().grabWindow(window.winId(), corner.x(), corner.y(),
                                          viewport.width(), viewport.height()).toImage()
        fresh = viewport.grab().toImage()
        return shot.convertToFormat(fresh.format()) == fresh

    qtbot.wait(20)
    rng = np.random.default_rng(4)
    steps = window.granularity.maximum()
    for value in [0, steps] + [int(v) for v in rng.integers(steps, size=8)]:
        before = set(window.doc.tree.frontier())
        window.granularity.setValue(value)
        qtbot.waitUntil(lambda: not window.panel_pending())
        qtbot.wait(10)
        assert on_screen_equals_fresh(), f"stale rows after a jump that changed {len(before ^ set(window.doc.tree.frontier()))}"


def _rows(model, parent=None, depth=1):
    """(index, depth) of every row below `parent` (None: the whole panel)."""
    from PySide6.QtCore import QModelIndex
    parent = QModelIndex() if parent is None else parent
    for r in range(model.rowCount(parent)):
        index = model.index(r, 0, parent)
        yield index, depth
        yield from _rows(model, index, depth + 1)


def test_layer_panel_is_a_few_levels_deep_and_every_row_shows_its_checkbox_swatch_and_name(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.resize(1400, 900)
    window.session.add_paths([write_sample(tmp_path, "astronaut", 256), write_sample(tmp_path, "chelsea", 256)])
    for index in (0, 1):
        wait_segmented(qtbot, window, index)
        window.session.show_image(index)
        tree, panel, model = window.doc.tree, window.layers, window.layer_model
        assert max(tree.depth(n) for n in tree.nodes) >= 6                # the tree itself is deep
        panel.expandAll()
        qtbot.wait(10)
        rows = list(_rows(model))
        assert max(depth for _, depth in rows) <= 4
        style, metrics = panel.style(), panel.fontMetrics()
        for index, _ in rows:
            panel.scrollTo(index)
            cell = panel.visualRect(index)
            option = _item_option(panel, index)
            check = style.subElementRect(style.SubElement.SE_ItemViewItemCheckIndicator, option, panel)
            swatch = style.subElementRect(style.SubElement.SE_ItemViewItemDecoration, option, panel)
            text = style.subElementRect(style.SubElement.SE_ItemViewItemText, option, panel)
            assert cell.contains(check) and cell.contains(swatch) and swatch.width() > 0
            name = model.data(index)
            assert text.width() >= metrics.horizontalAdvance(name), name       # "region 12 (8.3%)" whole


def test_a_row_selects_its_real_node_and_a_node_without_a_row_selects_its_nearest_row(qtbot, tmp_path):
    window = segmented_window(qtbot, tmp_path)
    tree, panel, model = window.doc.tree, window.layers, window.layer_model
    shown = tree.frontier()[-1]
    index = model.index_of(shown)
    panel.scrollTo(index)
    qtbot.mouseClick(panel.viewport(), LEFT, NO_MOD, panel.visualRect(index).center())
    assert window.selection == [shown]
    hidden = next(n for n in tree.nodes if not model.index_of(n).isValid())    # an intermediate split
    window.session.set_selection([hidden])
    assert window.selection == [hidden]
    assert panel.selected_ids() == [model.row_node(hidden)] and model.row_node(hidden) in tree.ancestors(hidden)


def test_a_slider_drag_moves_the_panel_rows_once_when_it_rests(qtbot, tmp_path):
    """Each step of a drag redraws the canvas at once; the compacted panel's rows move once,
    PANEL_DELAY_MS after the last step, and then mirror the tree."""
    window = segmented_window(qtbot, tmp_path)
    moves: list[int] = []
    window.layer_model.restructured.connect(lambda: moves.append(1))
    drawn = []
    set_overlay = window.canvas.set_overlay
    window.canvas.set_overlay = lambda *a: (drawn.append(1), set_overlay(*a))
    frontiers = set()
    for step, value in enumerate(range(200, 800, 50)):
        window.granularity.setValue(value)
        frontiers.add(tuple(window.doc.tree.frontier()))
        assert len(drawn) == step + 1                  # the canvas at once
    assert len(frontiers) > 3 and moves == [] and window.panel_pending()
    qtbot.waitUntil(lambda: not window.panel_pending())
    assert moves == [1]
    assert_panel_mirrors(window)


def test_the_panel_header_menu_shows_and_hides_columns(qtbot, tmp_path):
    """Cost starts hidden (the name needs the width); the header's menu brings it back."""
    window = segmented_window(qtbot, tmp_path)
    panel = window.layers
    actions = {a.text(): a for a in panel.header().actions()}
    assert set(actions) == {"Category", "Area", "Cost"} and panel.isColumnHidden(3) and not actions["Cost"].isChecked()
    actions["Cost"].trigger()
    assert not panel.isColumnHidden(3) and actions["Cost"].isChecked()
    actions["Area"].trigger()
    assert panel.isColumnHidden(2)
