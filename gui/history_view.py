"""The undo history of the active image as a list: click a row to go back or forward to it.

QUndoView resets its model on every push and repaints the whole list (5 ms of each edit in
the latency benchmark, decision 0402); this view appends, renames and removes only the rows
that changed, so an edit repaints one or two rows.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QItemSelectionModel, QModelIndex
from PySide6.QtGui import QStandardItem, QStandardItemModel, QUndoGroup, QUndoStack
from PySide6.QtWidgets import QAbstractItemView, QListView
from shiboken6 import Shiboken


class HistoryView(QListView):
    """Row 0 is the state before any edit (`empty_label`); row i follows the i-th command."""

    def __init__(self, group: QUndoGroup, empty_label: str) -> None:
        super().__init__()
        self.rows = QStandardItemModel(self)
        self.setModel(self.rows)
        self.setUniformItemSizes(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._empty_label = empty_label
        self._stack: Optional[QUndoStack] = None
        self._index = 0             # the stack's index when the rows were last brought up to date
        self._quiet = False
        group.activeStackChanged.connect(self._set_stack)
        self.selectionModel().currentRowChanged.connect(self._row_chosen)
        self._set_stack(group.activeStack())

    def _set_stack(self, stack: Optional[QUndoStack]) -> None:
        if self._stack is not None and Shiboken.isValid(self._stack):
            self._stack.indexChanged.disconnect(self._sync)
        self._stack = stack
        self.rows.clear()
        self.rows.appendRow(_row(self._empty_label))
        self._index = 0
        if stack is not None:
            stack.indexChanged.connect(self._sync)
            self._sync()
        else:
            self._show_current(0)

    def _sync(self, *_: object) -> None:
        """Bring the rows up to date. Commands before the older of the last and the current
        index cannot have changed, except the one just before it (a merged granularity step)."""
        stack = self._stack
        if stack is None or not Shiboken.isValid(stack):      # a stack being deleted clears itself
            return
        index, count = stack.index(), stack.count()
        start = max(min(self._index, index) - 1, 0)
        self._index = index
        if self.rows.rowCount() > count + 1:
            self.rows.removeRows(count + 1, self.rows.rowCount() - count - 1)
        for position in range(start, count):
            text = stack.text(position)
            item = self.rows.item(position + 1)
            if item is None:
                self.rows.appendRow(_row(text))
            elif item.text() != text:
                item.setText(text)
        self._show_current(index)

    def _show_current(self, row: int) -> None:
        self._quiet = True
        current = self.rows.index(row, 0)
        self.selectionModel().setCurrentIndex(current, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.scrollTo(current)
        self._quiet = False

    def _row_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """A row clicked (or reached with the arrow keys): undo or redo up to it."""
        if not self._quiet and self._stack is not None and current.isValid():
            self._stack.setIndex(current.row())


def _row(text: str) -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    return item
