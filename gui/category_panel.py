"""The category dock: a searchable list (number keys 1-9 follow its order) with add/rename."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from core.project import Category


class CategoryPanel(QWidget):
    """Emits `chosen(category id)` on double-click or Enter; the filter box narrows the list."""

    chosen = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.search = QLineEdit(placeholderText="Find a category… (Enter labels)")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._enter)
        self.list.itemActivated.connect(lambda item: self.chosen.emit(item.data(Qt.ItemDataRole.UserRole)))

    def set_categories(self, categories: list[Category]) -> None:
        self.list.clear()
        for position, category in enumerate(categories, start=1):
            key = f"{position}  " if position <= 9 else "    "
            kind = "" if category.isthing else "  (stuff)"
            item = QListWidgetItem(f"{key}{category.name}{kind}")
            swatch = QPixmap(14, 14)
            swatch.fill(QColor(*category.color))
            item.setIcon(swatch)
            item.setData(Qt.ItemDataRole.UserRole, category.id)
            self.list.addItem(item)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(bool(needle) and needle not in item.text().lower())

    def _enter(self) -> None:
        visible = [self.list.item(r) for r in range(self.list.count()) if not self.list.item(r).isHidden()]
        if visible:
            self.chosen.emit(visible[0].data(Qt.ItemDataRole.UserRole))
