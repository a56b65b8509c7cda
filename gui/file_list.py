"""The file list dock: every image with its status, a search box, and A/D navigation."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from gui.document import DONE, EDITED, ERROR, QUEUED, WORKING, ImageDoc

STATUS_COLORS = {DONE: QColor(60, 170, 90), EDITED: QColor(70, 130, 220), ERROR: QColor(220, 60, 60),
                 WORKING: QColor(230, 160, 30), QUEUED: QColor(170, 140, 60)}


class FileList(QWidget):
    """Lists documents; emits `chosen(index)` when the user picks one."""

    chosen = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.search = QLineEdit(placeholderText="Search images…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.search.textChanged.connect(self._filter)
        self.list.currentRowChanged.connect(self._picked)
        self._quiet = False

    def set_docs(self, docs: list[ImageDoc]) -> None:
        self._quiet = True
        self.list.clear()
        for index, doc in enumerate(docs):
            self.list.addItem(QListWidgetItem())
            self.update_doc(index, doc)
        self._quiet = False
        self._filter(self.search.text())

    def update_doc(self, index: int, doc: ImageDoc) -> None:
        item = self.list.item(index)
        item.setText(f"{doc.name}  [{doc.status}]")
        item.setToolTip(doc.error or doc.key)
        color = STATUS_COLORS.get(doc.status)
        item.setForeground(color if color is not None else self.palette().text().color())

    def set_current(self, index: int) -> None:
        self._quiet = True
        self.list.setCurrentRow(index)
        self._quiet = False

    def status_text(self, index: int) -> str:
        return self.list.item(index).text()

    def _picked(self, row: int) -> None:
        if not self._quiet and row >= 0:
            self.chosen.emit(row)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(bool(needle) and needle not in item.text().lower())
