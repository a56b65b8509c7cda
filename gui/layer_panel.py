"""The layer panel: a QTreeView over LayerModel whose selection mirrors the canvas; drag to regroup."""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QItemSelection, QModelIndex, QItemSelectionModel, QRect, Qt, Signal
from PySide6.QtGui import QAction, QRegion
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView

from gui.layer_model import COLUMNS, LayerModel


class LayerPanel(QTreeView):
    """Emits `selected(node ids)` when the user selects rows; `show_selection` mirrors back."""

    selected = Signal(list)

    def __init__(self, model: LayerModel) -> None:
        super().__init__()
        self.layers = model
        self.setModel(model)
        self._column_actions: list[QAction] = []
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)   # drop = regroup (see LayerModel)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(True)
        # a scroll bar that comes and goes on expand re-lays out the dock and repaints the window
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setIndentation(12)
        self.setMinimumWidth(330)
        for column, width in ((1, 108), (2, 62), (3, 44)):   # fixed widths: sizing to contents reads every row
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        self._column_menu(header)
        self.setColumnHidden(COLUMNS.index("Cost"), True)    # the name needs the width; right-click the header
        self._quiet = False
        self._open: set[int] = set()        # expanded nodes, by id: rows a restructure moved lose it
        self.selectionModel().selectionChanged.connect(self._changed)
        self.expanded.connect(lambda index: self._open.add(model.node_id(index)))
        self.collapsed.connect(self._closed)
        model.tree_replaced.connect(self._after_reset)
        model.restructured.connect(self._reopen)
        model.values_changed.connect(self._repaint_rows)

    def _column_menu(self, header: QHeaderView) -> None:
        """Right-click on the header shows or hides each column but the region's."""
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for column, title in enumerate(COLUMNS[1:], start=1):
            action = QAction(title, header, checkable=True, checked=not self.isColumnHidden(column))
            action.toggled.connect(lambda on, c=column: self.setColumnHidden(c, not on))
            header.addAction(action)
            self._column_actions.append(action)

    def setColumnHidden(self, column: int, hide: bool) -> None:
        super().setColumnHidden(column, hide)
        if 0 < column <= len(self._column_actions):
            action = self._column_actions[column - 1]
            action.blockSignals(True)
            action.setChecked(not hide)
            action.blockSignals(False)

    def selected_ids(self) -> list[int]:
        return [self.layers.node_id(i) for i in self.selectionModel().selectedRows(0)]

    def show_selection(self, node_ids: list[int]) -> None:
        """Select these nodes' rows (without echoing a `selected` signal) and scroll to the
        first; a node without a row selects the row of its nearest ancestor that has one."""
        self._quiet = True
        selection = QItemSelection()
        node_ids = [n for n in dict.fromkeys(self.layers.row_node(nid) for nid in node_ids) if n is not None]
        for nid in node_ids:
            index = self.layers.index_of(nid)
            if index.isValid():
                selection.select(index, self.layers.index_of(nid, self.layers.columnCount() - 1))
                parent = index.parent()
                while parent.isValid() and not self.isExpanded(parent):
                    self.expand(parent)
                    parent = parent.parent()
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.selectionModel().select(selection, flags)
        if node_ids:
            index = self.layers.index_of(node_ids[0])
            if index.isValid():
                self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
                self.scrollTo(index)
        self._quiet = False

    def _changed(self, *_: object) -> None:
        if not self._quiet and not self.layers.moving_rows:
            self.selected.emit(self.selected_ids())

    def _closed(self, index: QModelIndex) -> None:
        """The user collapsed a row (a row losing its last child row while rows move is not)."""
        if not self.layers.moving_rows:
            self._open.discard(self.layers.node_id(index))

    def _repaint_rows(self, node_ids: list[int]) -> None:
        """Repaint the rows of these nodes that are on screen (a granularity jump changes the
        boldness of a hundred rows, most under collapsed branches or scrolled away: a full
        repaint of the panel cost 2-3 ms)."""
        viewport = self.viewport().rect()
        region = QRegion()
        open_: dict[int, bool] = {}      # per ancestor: expanded with all of its ancestors
        for nid in node_ids:
            if not self._reachable(self.layers.parent_of(nid), open_):
                continue
            rect = self.visualRect(self.layers.index_of(nid))
            if rect.intersects(viewport):
                region += QRect(0, rect.top(), viewport.width(), rect.height())
        if not region.isEmpty():
            self.viewport().update(region)

    def _reachable(self, node_id: Optional[int], memo: dict[int, bool]) -> bool:
        """Is the node (None: above the root) expanded, and each of its ancestors?"""
        if node_id is None:
            return True
        if node_id not in memo:
            memo[node_id] = (self.isExpanded(self.layers.index_of(node_id))
                             and self._reachable(self.layers.parent_of(node_id), memo))
        return memo[node_id]

    def _after_reset(self) -> None:
        self._open.clear()
        root = self.layers.index(0, 0)
        if root.isValid():
            self.expand(root)

    def _reopen(self) -> None:
        """Expand again the moved rows that were expanded (a node removed and brought back by
        undo comes back expanded too)."""
        for nid in list(self._open):
            index = self.layers.index_of(nid)
            if index.isValid() and not self.isExpanded(index):
                self.expand(index)
