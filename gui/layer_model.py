"""The cut tree as a QAbstractItemModel for the layer panel (one row per node).

Columns: name (with colour swatch and visibility checkbox), category, area, NCut cost.
Frontier nodes (the segments shown) are bold. The model is reset after each edit (a tree of
a few hundred atoms has under a thousand nodes; the view keeps expansion via the panel).
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


class LayerModel(QAbstractItemModel):
    """Tree rows over a SegmentTree; `category_name(id)` names categories."""

    def __init__(self, category_name: Callable[[Optional[int]], str]) -> None:
        super().__init__()
        self.tree: Optional[SegmentTree] = None
        self.category_name = category_name
        self.on_visibility: Callable[[int, bool], None] = lambda nid, visible: None
        self.on_regroup: Callable[[list[int], int], bool] = lambda ids, parent: False
        self._frontier: set[int] = set()
        self._rows: dict[int, tuple[str, str, str, str]] = {}     # texts per node, until the next change
        self._bold = QFont()
        self._bold.setBold(True)

    def set_tree(self, tree: Optional[SegmentTree]) -> None:
        self.beginResetModel()
        self.tree = tree
        self._frontier = set(tree.frontier()) if tree is not None else set()
        self._rows.clear()
        self.endResetModel()

    def refresh_values(self) -> None:
        """Node values changed but not the structure: keep rows, re-read what they show."""
        if self.tree is None:
            return
        self._frontier = set(self.tree.frontier())
        self._rows.clear()
        root = self.index(0, 0)
        self.dataChanged.emit(root, root.siblingAtColumn(len(COLUMNS) - 1))
        self.values_changed()

    def values_changed(self) -> None:
        """Hook for views: every row may show new values (set by the layer panel)."""

    # ------------------------------------------------------------------ structure
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if self.tree is None:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, self.tree.root) if row == 0 else QModelIndex()
        children = self.tree.nodes[parent.internalId()].children
        if 0 <= row < len(children):
            return self.createIndex(row, column, children[row])
        return QModelIndex()

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if self.tree is None or not index.isValid():
            return QModelIndex()
        parent = self.tree.nodes[index.internalId()].parent
        if parent is None:
            return QModelIndex()
        return self.createIndex(self._row_of(parent), 0, parent)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if self.tree is None:
            return 0
        if not parent.isValid():
            return 1
        if parent.column() != 0:
            return 0
        return len(self.tree.nodes[parent.internalId()].children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(COLUMNS)

    def index_of(self, node_id: int, column: int = 0) -> QModelIndex:
        if self.tree is None or node_id not in self.tree.nodes:
            return QModelIndex()
        return self.createIndex(self._row_of(node_id), column, node_id)

    def node_id(self, index: Index) -> int:
        return int(index.internalId())

    def _row_of(self, node_id: int) -> int:
        assert self.tree is not None
        parent = self.tree.nodes[node_id].parent
        return 0 if parent is None else self.tree.nodes[parent].children.index(node_id)

    # ------------------------------------------------------------------ data
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDropEnabled
        if index.column() == 0:
            base |= Qt.ItemFlag.ItemIsUserCheckable
        if self.tree is not None and index.internalId() != self.tree.root:
            base |= Qt.ItemFlag.ItemIsDragEnabled
        return base

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
        node = self.tree.nodes[nid]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            row = self._rows.get(nid)
            if row is None:
                row = self._rows[nid] = self._texts(nid)
            return row[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return QColor(*node.color)
        if role == Qt.ItemDataRole.CheckStateRole and column == 0:
            return Qt.CheckState.Checked if node.visible else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.FontRole and nid in self._frontier:
            return self._bold
        if role == Qt.ItemDataRole.ForegroundRole and node.ignored:
            return QColor(128, 128, 128)
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return "shown as a segment" if nid in self._frontier else None
        return None

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
