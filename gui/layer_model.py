"""The cut tree as a QStandardItemModel for the layer panel, compacted for reading: rows
for the root, the segments and the nodes the annotator marked or made (`shown_structure`,
decision 0405); the tree itself stays binary.

Columns: name (with colour swatch and visibility checkbox), category, area, NCut cost.
Frontier nodes (the segments shown) are bold. The rows live on the C++ side: the view paints,
lays out and scrolls without calling Python (a Python QAbstractItemModel answered thousands
of data/index/parent calls per repaint, most of an edit's latency; decision 0402). An edit
updates only the cells whose values changed (`refresh_values`); one that adds, removes or
moves nodes moves only those rows (`restructure`); a new tree rebuilds the rows.
Rows can be dragged onto another row: the drop asks `on_regroup(node ids, new parent)` to
move them there (the window makes that an undoable `SegmentTree.regroup`).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, NamedTuple, Optional, Sequence

from PySide6.QtCore import QMimeData, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont, QStandardItem, QStandardItemModel

from core.tree import Node, SegmentTree
from gui.region_names import region_name

COLUMNS = ("Region", "Category", "Area", "Cost")
NODES_MIME = "application/x-cuttree-nodes"
NODE_ROLE = Qt.ItemDataRole.UserRole + 1          # every cell of a row holds its node id
Index = QModelIndex | QPersistentModelIndex

_ROLE = Qt.ItemDataRole
_ITEM = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDropEnabled
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_GREY = QColor(128, 128, 128)
_SHOWN_TIP = "shown as a segment"
PARTIAL_REFRESH_MAX = 16      # more changed rows than this: `values_changed`, not a dataChanged per row


class RowValues(NamedTuple):
    """What a node's row shows; rows are compared by these to skip unchanged cells."""

    texts: tuple[str, str, str, str]
    color: tuple[int, int, int]
    visible: bool
    shown: bool
    ignored: bool
    suggested: bool = False      # the category shown is a label suggestion ("? road 0.93")


def marked(node: Node) -> bool:
    """Did the annotator say something about this node (a label, a name, hidden, ignored)?"""
    return node.category is not None or bool(node.name) or not node.visible or node.ignored


def has_row(tree: SegmentTree, frontier: set[int], nid: int) -> bool:
    """Does this node have a row in the compacted tree: the root, a segment shown, a node the
    annotator marked, or a part of a shown segment the annotator made (infinite cost: a merge
    group, a drop target)?"""
    node = tree.nodes[nid]
    if nid == tree.root or nid in frontier or marked(node):
        return True
    return node.parent in frontier and math.isinf(tree.nodes[node.parent].cost)


def shown_structure(tree: SegmentTree, frontier: set[int]) -> tuple[dict[int, Optional[int]], dict[int, list[int]], dict[int, int]]:
    """The cut tree compacted for reading: rows for the root, the segments shown, the parts
    of a segment the annotator made (a merge group, a drop target) and the nodes the annotator
    marked; a row's children are its nearest such descendants, in the
    tree's order (a chain of binary splits reads as one group). Parent, children and depth
    of each row."""
    root = tree.root
    parent: dict[int, Optional[int]] = {root: None}
    children: dict[int, list[int]] = {root: []}
    depth = {root: 0}
    stack = [(child, root) for child in reversed(tree.nodes[root].children)]
    while stack:
        nid, above = stack.pop()
        if has_row(tree, frontier, nid):
            parent[nid], children[nid], depth[nid] = above, [], depth[above] + 1
            children[above].append(nid)
            above = nid
        stack.extend((child, above) for child in reversed(tree.nodes[nid].children))
    return parent, children, depth


class LayerModel(QStandardItemModel):
    """Tree rows over a SegmentTree; `category_name(id)` names categories."""

    tree_replaced = Signal()      # a new tree (or none): the rows were rebuilt
    restructured = Signal()       # rows were moved: views restore what they had expanded
    values_changed = Signal(list)  # many rows (these node ids) show new values: views repaint them

    def __init__(self, category_name: Callable[[Optional[int]], str]) -> None:
        super().__init__()
        self.tree: Optional[SegmentTree] = None
        self.category_name = category_name
        self.on_visibility: Callable[[int, bool], None] = lambda nid, visible: None
        self.on_regroup: Callable[[list[int], int], bool] = lambda ids, parent: False
        self._frontier: set[int] = set()
        self._items: dict[int, list[QStandardItem]] = {}    # node id -> its row's cells
        self._values: dict[int, RowValues] = {}             # what each row shows now
        self._parent: dict[int, Optional[int]] = {}         # the structure the rows show ...
        self._children: dict[int, list[int]] = {}           # ... both ways
        self._depth: dict[int, int] = {}                    # rows above each row
        self._spare: dict[int, list[QStandardItem]] = {}    # detached rows of nodes without a row now
        self.moving_rows = False     # rows are being moved: a selection the view loses is not the user's
        self._bold = QFont()
        self._bold.setBold(True)
        self._italic, self._bold_italic = QFont(), QFont(self._bold)
        self._italic.setItalic(True)
        self._bold_italic.setItalic(True)
        self.setHorizontalHeaderLabels(list(COLUMNS))

    # ------------------------------------------------------------------ updates
    def set_tree(self, tree: Optional[SegmentTree]) -> None:
        """Rebuild every row (built detached, then added at once: one insertion for the view)."""
        self.moving_rows = True
        self.invisibleRootItem().removeRows(0, self.invisibleRootItem().rowCount())
        self.moving_rows = False
        self.tree = tree
        self._items.clear()
        self._values.clear()
        self._parent.clear()
        self._children.clear()
        self._spare.clear()
        if tree is not None:
            self._frontier = set(tree.frontier())
            self._parent, self._children, self._depth = shown_structure(tree, self._frontier)
            for nid in self._parent:
                self._new_row(nid)
            for nid, children in self._children.items():
                for child in children:
                    self._items[nid][0].appendRow(self._items[child])
            self.invisibleRootItem().appendRow(self._items[tree.root])
        self.tree_replaced.emit()

    def restructure(self, node_ids: Optional[set[int]] = None) -> None:
        """Nodes were added, removed or moved: move just those rows, so that the view keeps
        everything else (expansion, selection, scroll position); then refresh the values of
        `node_ids` (None: all), of the moved rows and of rows entering or leaving the frontier."""
        self._update(node_ids, structure_changed=True)

    def refresh_values(self, node_ids: Optional[set[int]] = None) -> bool:
        """Node values changed but not the tree's structure: re-read what rows show and set
        the cells that differ (`node_ids` only, None: every row). A changed frontier changes
        which nodes have rows: those rows move as in `restructure`; True if any did."""
        return self._update(node_ids, structure_changed=False)

    def _update(self, node_ids: Optional[set[int]], structure_changed: bool) -> bool:
        """Move the rows whose shown parent changed (if the structure or frontier did), then
        set the cells that differ; True if rows moved."""
        tree = self.tree
        if tree is None:
            return False
        before = self._frontier
        self._frontier = set(tree.frontier())
        moved: list[int] = []
        structure_changed = (structure_changed or self._frontier != before or node_ids is None
                             or any(has_row(tree, self._frontier, n) != (n in self._items) for n in node_ids & tree.nodes.keys()))
        if structure_changed:
            moved = self._move_rows()
            if node_ids is not None:
                node_ids = node_ids | set(moved) | {d for n in moved for d in self._rows_below(n)}
        entering_or_leaving = (self._frontier ^ before) & self._items.keys()
        rows = self._items.keys() if node_ids is None else node_ids & self._items.keys()
        changed = [(nid, self._row_values(nid)) for nid in rows]
        changed += [(nid, self._values[nid]._replace(shown=nid in self._frontier))
                    for nid in entering_or_leaving - rows if nid in self._values]
        # one repaint for the batch: a dataChanged per cell would look each row up in the view
        self.blockSignals(True)
        try:
            shown = [nid for nid, values in changed if self._show(nid, values)]
        finally:
            self.blockSignals(False)
        if len(shown) > PARTIAL_REFRESH_MAX:
            self.values_changed.emit(shown)
        else:
            for nid in shown:
                self.dataChanged.emit(self.index_of(nid), self.index_of(nid, len(COLUMNS) - 1))
        if structure_changed:
            self.restructured.emit()
        return bool(structure_changed)

    def _move_rows(self) -> list[int]:
        """Bring the rows to the tree's compacted structure, moving only the rows whose shown
        parent changed; the moved nodes."""
        tree = self.tree
        assert tree is not None
        parent, children, depth = shown_structure(tree, self._frontier)
        moved = [n for n, above in parent.items() if n in self._parent and self._parent[n] != above]
        gone = [n for n in self._parent if n not in parent]
        self.moving_rows = True
        try:
            loose = self._detach(moved, gone)
            for nid in parent.keys() - self._items.keys():
                loose[nid] = self._spare_row(nid) if nid in self._spare else self._new_row(nid)
            self._attach(loose, children, depth)
        finally:
            self.moving_rows = False
        self._parent, self._children, self._depth = parent, children, depth
        for nid in self._spare.keys() - tree.nodes.keys():
            del self._spare[nid], self._values[nid]
        return moved

    def _spare_row(self, nid: int) -> list[QStandardItem]:
        """A node's row again, detached, showing its values now (cheaper than a new row)."""
        cells = self._items[nid] = self._spare.pop(nid)
        self._show(nid, self._row_values(nid))
        return cells

    def _rows_below(self, nid: int) -> list[int]:
        """The nodes whose rows are below this node's row."""
        out, stack = [], list(self._children.get(nid, ()))
        while stack:
            child = stack.pop()
            out.append(child)
            stack.extend(self._children[child])
        return out

    # ------------------------------------------------------------------ rows
    def _new_row(self, nid: int) -> list[QStandardItem]:
        """A detached row of cells for a node, filled with its values."""
        assert self.tree is not None
        cells = [QStandardItem() for _ in COLUMNS]
        movable = Qt.ItemFlag.NoItemFlags if nid == self.tree.root else Qt.ItemFlag.ItemIsDragEnabled
        for column, cell in enumerate(cells):
            cell.setData(nid, NODE_ROLE)
            cell.setFlags(_ITEM | movable | (Qt.ItemFlag.ItemIsUserCheckable if column == 0 else Qt.ItemFlag.NoItemFlags))
            if column >= 2:
                cell.setTextAlignment(_RIGHT)
        self._items[nid] = cells
        self._show(nid, self._row_values(nid))
        return cells

    def _show(self, nid: int, values: RowValues) -> bool:
        """Set the cells of a row whose values differ from what it shows; False if none did."""
        old = self._values.get(nid)
        if old == values:
            return False
        self._values[nid] = values
        cells = self._items[nid]
        for cell, text, before in zip(cells, values.texts, old.texts if old else (None,) * len(COLUMNS)):
            if text != before:
                cell.setText(text)
        first = cells[0]
        if old is None or old.color != values.color:
            first.setData(QColor(*values.color), _ROLE.DecorationRole)
        if old is None or old.visible != values.visible:
            first.setCheckState(Qt.CheckState.Checked if values.visible else Qt.CheckState.Unchecked)
        if old is None or old.shown != values.shown:
            for cell in cells:
                cell.setData(self._bold if values.shown else None, _ROLE.FontRole)
            first.setToolTip(_SHOWN_TIP if values.shown else "")
        if old is None or old.ignored != values.ignored:
            for cell in cells:
                cell.setData(_GREY if values.ignored else None, _ROLE.ForegroundRole)
        if old is None or (old.suggested, old.shown, old.ignored) != (values.suggested, values.shown, values.ignored):
            self._show_suggested(cells[1], values)
        return True

    def _show_suggested(self, cell: QStandardItem, values: RowValues) -> None:
        """A suggested category is grey and italic (bold too on a shown segment's row)."""
        if values.suggested:
            cell.setData(self._bold_italic if values.shown else self._italic, _ROLE.FontRole)
            cell.setData(_GREY, _ROLE.ForegroundRole)
        else:
            cell.setData(self._bold if values.shown else None, _ROLE.FontRole)
            cell.setData(_GREY if values.ignored else None, _ROLE.ForegroundRole)

    def _detach(self, moved: list[int], gone: list[int]) -> dict[int, list[QStandardItem]]:
        """Take the rows of moved and removed nodes out, deepest first (a row leaves with the
        rows below it, which by then all stay under it); the moved ones, by node id."""
        loose: dict[int, list[QStandardItem]] = {}
        removed = set(gone)
        tree_nodes = self.tree.nodes if self.tree is not None else {}
        for nid in sorted(moved + gone, key=self._depth.__getitem__, reverse=True):
            cell = self._items[nid][0]
            holder = cell.parent() or self.invisibleRootItem()
            cells = holder.takeRow(cell.row())
            if nid in removed:
                del self._items[nid]
                if nid in tree_nodes:           # kept for when it gets a row again (a granularity change)
                    self._spare[nid] = cells
                else:
                    del self._values[nid]
            else:
                loose[nid] = cells
        return loose

    def _attach(self, loose: dict[int, list[QStandardItem]], children: dict[int, list[int]],
                depth: dict[int, int]) -> None:
        """Give each parent whose children changed (in number or order) its children in the
        tree's order, deepest parents first (a new group gets its rows while detached, then
        joins the view in one insertion)."""
        tree = self.tree
        assert tree is not None
        parents = {nid for nid, kids in children.items() if kids != self._children.get(nid)}
        if tree.root in loose:
            parents.add(None)
        for parent in sorted(parents, key=lambda n: -1 if n is None else depth[n], reverse=True):
            holder = self.invisibleRootItem() if parent is None else self._items[parent][0]
            wanted = [tree.root] if parent is None else children[parent]
            have = [holder.child(row).data(NODE_ROLE) for row in range(holder.rowCount())]
            for row, child in enumerate(wanted):
                if row < len(have) and have[row] == child:
                    continue
                if child in have:                           # the same parent, another position
                    cells = holder.takeRow(have.index(child))
                    have.remove(child)
                else:
                    cells = loose.pop(child)
                holder.insertRow(row, cells)
                have.insert(row, child)

    def _row_values(self, nid: int) -> RowValues:
        assert self.tree is not None
        node = self.tree.nodes[nid]
        texts = self._texts(nid)
        return RowValues(texts, tuple(node.color), node.visible, nid in self._frontier, node.ignored,
                         texts[1].startswith("? "))

    def _texts(self, nid: int) -> tuple[str, str, str, str]:
        """Name, category (inherited in parentheses; a suggestion as "? name confidence"), area, cost."""
        assert self.tree is not None
        node = self.tree.nodes[nid]
        category = self.category_name(self.tree.effective_category(nid))
        if category and node.category is None:
            category = f"({category})"
        elif not category and nid in self.tree.suggestions:
            suggestion = self.tree.live_suggestion(nid)
            if suggestion is not None:
                category = f"? {self.category_name(suggestion.category)} {suggestion.confidence:.2f}"
        cost = "" if math.isinf(node.cost) else f"{node.cost:.3f}"
        return self.region_name(nid), category, f"{self.tree.area(nid):,}", cost

    # ------------------------------------------------------------------ lookups
    def index_of(self, node_id: int, column: int = 0) -> QModelIndex:
        cells = self._items.get(node_id)
        return QModelIndex() if cells is None else cells[column].index()

    def parent_of(self, node_id: int) -> Optional[int]:
        """The parent the rows show (the nearest ancestor with a row, once they are up to date)."""
        return self._parent.get(node_id)

    def row_node(self, node_id: int) -> Optional[int]:
        """The node whose row stands for this node: itself, else its nearest ancestor with a row."""
        tree = self.tree
        nid: Optional[int] = node_id
        while nid is not None and nid not in self._items:
            nid = tree.nodes[nid].parent if tree is not None and nid in tree.nodes else None
        return nid

    def node_id(self, index: Index) -> int:
        return int(index.data(NODE_ROLE))

    def region_name(self, nid: int) -> str:
        assert self.tree is not None
        return region_name(self.tree, nid, self.category_name)

    # ------------------------------------------------------------------ user edits through the view
    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """A checkbox click asks the window; the row changes when the (undoable) edit is made."""
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == 0:
            self.on_visibility(self.node_id(index), Qt.CheckState(value) == Qt.CheckState.Checked)
            return True
        return False

    def removeRows(self, row: int, count: int, parent: Index = QModelIndex()) -> bool:
        """Refused: after a move-drop the view would delete the dragged rows; the regroup edit
        has already moved them (rows change only through `restructure`)."""
        return False

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [NODES_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        """The dragged rows' node ids (each row once, whatever columns were selected)."""
        ids = list(dict.fromkeys(self.node_id(i) for i in indexes if i.isValid()))
        data = QMimeData()
        data.setData(NODES_MIME, json.dumps(ids).encode("ascii"))
        return data

    def dropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index) -> bool:
        """Rows dropped on a row (or between its children) move under that row's node."""
        if action != Qt.DropAction.MoveAction or not data.hasFormat(NODES_MIME) or not parent.isValid():
            return False
        try:
            ids = [int(v) for v in json.loads(bytes(data.data(NODES_MIME)).decode("ascii"))]
        except (ValueError, TypeError):
            return False
        return self.on_regroup(ids, self.node_id(parent))

