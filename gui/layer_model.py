"""The cut tree as a QAbstractItemModel for the layer panel (one row per node).

Columns: name (with colour swatch and visibility checkbox), category, area, NCut cost.
Frontier nodes (the segments shown) are bold. An edit refreshes only the rows whose values
changed (`refresh_values`); one that adds, removes or moves nodes is a layout change
(`restructure`), so the view keeps its expansion and selection; a new tree resets the model.
Rows can be dragged onto another row: the drop asks `on_regroup(node ids, new parent)` to
move them there (the window makes that an undoable `SegmentTree.regroup`).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import QAbstractItemModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from core.tree import SegmentTree

COLUMNS = ("Region", "Category", "Area", "Cost")
NODES_MIME = "application/x-cuttree-nodes"
Index = QModelIndex | QPersistentModelIndex
Row = dict[int, tuple[Any, ...]]          # role -> one value per column

# The view asks for data, flags and parents thousands of times per repaint: the answers are
# prepared once (flags here, each row's values on first use) so that a call is a dict lookup.
_ROLE = Qt.ItemDataRole
_DISPLAY, _DECORATION, _CHECK, _FONT, _FOREGROUND, _ALIGN, _TOOLTIP = (
    int(r.value) for r in (_ROLE.DisplayRole, _ROLE.DecorationRole, _ROLE.CheckStateRole, _ROLE.FontRole,
                           _ROLE.ForegroundRole, _ROLE.TextAlignmentRole, _ROLE.ToolTipRole))
_ITEM = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDropEnabled
_FLAGS = {  # (is the root, is column 0) -> flags
    (True, True): _ITEM | Qt.ItemFlag.ItemIsUserCheckable, (True, False): _ITEM,
    (False, True): _ITEM | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsDragEnabled,
    (False, False): _ITEM | Qt.ItemFlag.ItemIsDragEnabled,
}
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
_GREY = QColor(128, 128, 128)
PARTIAL_REFRESH_MAX = 64      # more changed rows than this: one repaint of the whole panel is cheaper


class LayerModel(QAbstractItemModel):
    """Tree rows over a SegmentTree; `category_name(id)` names categories."""

    def __init__(self, category_name: Callable[[Optional[int]], str]) -> None:
        super().__init__()
        self.tree: Optional[SegmentTree] = None
        self.category_name = category_name
        self.on_visibility: Callable[[int, bool], None] = lambda nid, visible: None
        self.on_regroup: Callable[[list[int], int], bool] = lambda ids, parent: False
        self._frontier: set[int] = set()
        self._rows: dict[int, Row] = {}               # what each node's row shows, until the next change
        self._row_in_parent: dict[int, int] = {}      # until the structure changes
        self._parent_index: dict[int, QModelIndex] = {}   # likewise (the view asks very often)
        self._bold = QFont()
        self._bold.setBold(True)

    def set_tree(self, tree: Optional[SegmentTree]) -> None:
        self.beginResetModel()
        self.tree = tree
        self._frontier = set(tree.frontier()) if tree is not None else set()
        self._rows.clear()
        self._row_in_parent.clear()
        self._parent_index.clear()
        self.endResetModel()

    def restructure(self) -> None:
        """Nodes were added, removed or moved: a layout change, not a reset, so the view keeps
        which nodes are expanded and selected (its persistent indexes follow the node ids)."""
        if self.tree is None:
            return
        self.layoutAboutToBeChanged.emit()
        self._frontier = set(self.tree.frontier())
        self._rows.clear()
        self._row_in_parent.clear()
        self._parent_index.clear()
        old = self.persistentIndexList()
        self.changePersistentIndexList(old, [self.index_of(i.internalId(), i.column()) for i in old])
        self.layoutChanged.emit()

    def refresh_values(self, node_ids: Optional[set[int]] = None) -> None:
        """Node values changed but not the structure: keep rows, re-read what they show.

        With `node_ids`, only those rows (and the rows entering or leaving the frontier) are
        re-read and repainted; None means every row (a category renamed, a new colour).
        """
        if self.tree is None:
            return
        frontier = set(self.tree.frontier())
        rows = None if node_ids is None else (node_ids | (frontier ^ self._frontier)) & self.tree.nodes.keys()
        self._frontier = frontier
        if rows is None or len(rows) > PARTIAL_REFRESH_MAX:
            self._rows.clear()
            root = self.index(0, 0)
            self.dataChanged.emit(root, root.siblingAtColumn(len(COLUMNS) - 1))
            self.values_changed()
            return
        for nid in rows:
            self._rows.pop(nid, None)
            self.dataChanged.emit(self.index_of(nid), self.index_of(nid, len(COLUMNS) - 1))

    def values_changed(self) -> None:
        """Hook for views: every row may show new values (set by the layer panel)."""

    # ------------------------------------------------------------------ structure
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if self.tree is None:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, self.tree.root) if row == 0 else QModelIndex()
        node = self.tree.nodes.get(parent.internalId())      # None: a stale index during restructure
        if node is not None and 0 <= row < len(node.children):
            return self.createIndex(row, column, node.children[row])
        return QModelIndex()

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if self.tree is None or not index.isValid():
            return QModelIndex()
        nid = index.internalId()
        found = self._parent_index.get(nid)
        if found is None:
            node = self.tree.nodes.get(nid)
            if node is None:
                return QModelIndex()
            parent = node.parent
            found = QModelIndex() if parent is None else self.createIndex(self._row_of(parent), 0, parent)
            self._parent_index[nid] = found
        return found

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if self.tree is None:
            return 0
        if not parent.isValid():
            return 1
        node = self.tree.nodes.get(parent.internalId())
        return 0 if node is None or parent.column() != 0 else len(node.children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(COLUMNS)

    def index_of(self, node_id: int, column: int = 0) -> QModelIndex:
        if self.tree is None or node_id not in self.tree.nodes:
            return QModelIndex()
        return self.createIndex(self._row_of(node_id), column, node_id)

    def node_id(self, index: Index) -> int:
        return int(index.internalId())

    def _row_of(self, node_id: int) -> int:
        row = self._row_in_parent.get(node_id)
        if row is None:
            assert self.tree is not None
            parent = self.tree.nodes[node_id].parent
            siblings = [node_id] if parent is None else self.tree.nodes[parent].children
            self._row_in_parent.update((nid, i) for i, nid in enumerate(siblings))
            row = self._row_in_parent[node_id]
        return row

    # ------------------------------------------------------------------ data
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if self.tree is None or not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return _FLAGS[index.internalId() == self.tree.root, index.column() == 0]

    # ------------------------------------------------------------------ drag and drop
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

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.tree is None or not index.isValid():
            return None
        nid = index.internalId()
        row = self._rows.get(nid)
        if row is None:
            if nid not in self.tree.nodes:
                return None
            row = self._rows[nid] = self._row_values(nid)
        values = row.get(int(role))
        return None if values is None else values[index.column()]

    def _row_values(self, nid: int) -> Row:
        """Everything a node's row shows, per role and column."""
        assert self.tree is not None
        node = self.tree.nodes[nid]
        shown = nid in self._frontier
        row: Row = {
            _DISPLAY: self._texts(nid),
            _DECORATION: (QColor(*node.color), None, None, None),
            _CHECK: (Qt.CheckState.Checked if node.visible else Qt.CheckState.Unchecked, None, None, None),
            _ALIGN: (None, None, _RIGHT, _RIGHT),
            _TOOLTIP: ("shown as a segment" if shown else None,) * len(COLUMNS),
        }
        if shown:
            row[_FONT] = (self._bold,) * len(COLUMNS)
        if node.ignored:
            row[_FOREGROUND] = (_GREY,) * len(COLUMNS)
        return row

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == 0:
            self.on_visibility(index.internalId(), Qt.CheckState(value) == Qt.CheckState.Checked)
            return True
        return False

    def region_name(self, nid: int) -> str:
        assert self.tree is not None
        node = self.tree.nodes[nid]
        label = node.name or ("image" if nid == self.tree.root else f"region {nid}")
        return label + (" (ignored)" if node.ignored else "")

    def _texts(self, nid: int) -> tuple[str, str, str, str]:
        """Name, category (inherited in parentheses), area, cost."""
        assert self.tree is not None
        node = self.tree.nodes[nid]
        category = self.category_name(self.tree.effective_category(nid))
        if category and node.category is None:
            category = f"({category})"
        cost = "" if math.isinf(node.cost) else f"{node.cost:.3f}"
        return self.region_name(nid), category, f"{self.tree.area(nid):,}", cost
