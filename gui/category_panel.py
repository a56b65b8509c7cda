"""The category dock: a searchable list (number keys 1-9 follow its order) and its manager.

Double-click or Enter labels the selection (the search box and the list keep Enter, which
elsewhere accepts a label suggestion). The buttons add, rename, recolour, reorder,
switch thing/stuff and delete categories, or load a label set (any COCO category list);
every change is emitted as the whole new list (`changed`), so the window stays the one owner
of the categories (and of the project that stores them). Deleting is only a request (`delete_requested`): the window first unlabels the
regions that use the category.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import qtawesome as qta
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (QColorDialog, QFileDialog, QHBoxLayout, QInputDialog, QLineEdit, QListWidget,
                               QListWidgetItem, QMessageBox, QToolButton, QVBoxLayout, QWidget)

from core.errors import CutTreeError
from core.project import Category, load_label_set
from gui.categories import category_color


class CategoryPanel(QWidget):
    """Emits `chosen(id)` to label, `changed(categories)` after an edit, `delete_requested(id)`."""

    chosen = Signal(object)
    changed = Signal(list)
    delete_requested = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.categories: list[Category] = []
        self.reserved_ids: Callable[[], set[int]] = set    # ids still used by regions: never reused
        self.search = QLineEdit(placeholderText="Find a category… (Enter labels)")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        layout.addLayout(self._buttons())
        self.search.installEventFilter(self)
        self.list.installEventFilter(self)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._enter)
        self.list.itemActivated.connect(lambda item: self.chosen.emit(item.data(Qt.ItemDataRole.UserRole)))

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.buttons: dict[str, QToolButton] = {}
        for name, icon, tip, slot in (
                ("add", "mdi6.plus", "Add a category", self._ask_add),
                ("rename", "mdi6.rename-outline", "Rename the category", self._ask_rename),
                ("color", "mdi6.palette-outline", "Change the category's colour", self._ask_color),
                ("stuff", "mdi6.texture-box", "Switch thing (countable) / stuff (panoptic export)",
                 lambda: self._with_current(self.toggle_stuff)),
                ("up", "mdi6.arrow-up", "Move up (number keys follow the order)",
                 lambda: self._with_current(lambda cid: self.move(cid, -1))),
                ("down", "mdi6.arrow-down", "Move down", lambda: self._with_current(lambda cid: self.move(cid, 1))),
                ("delete", "mdi6.delete-outline", "Delete the category",
                 lambda: self._with_current(self.delete_requested.emit)),
                ("load", "mdi6.folder-open-outline",
                 "Load a label set: a JSON category list, or the categories of a COCO file", self._ask_load)):
            button = QToolButton(icon=qta.icon(icon), toolTip=tip, autoRaise=True)
            button.clicked.connect(slot)
            row.addWidget(button)
            self.buttons[name] = button
        row.addStretch(1)
        return row

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter in the search box or the list labels by the category there: it is taken before
        the window's Enter shortcut (accept the suggestion) can be."""
        if (event.type() == QEvent.Type.ShortcutOverride and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            event.accept()
            return True
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------------ showing
    def set_categories(self, categories: list[Category]) -> None:
        """Show a list (kept as given; the current row stays on the same category)."""
        current = self.current_id()
        self.categories = list(categories)
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
            if category.id == current:
                self.list.setCurrentItem(item)
        self._filter(self.search.text())

    def current_id(self) -> Optional[int]:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(bool(needle) and needle not in item.text().lower())

    def _enter(self) -> None:
        visible = [self.list.item(r) for r in range(self.list.count()) if not self.list.item(r).isHidden()]
        if visible:
            self.chosen.emit(visible[0].data(Qt.ItemDataRole.UserRole))

    # ------------------------------------------------------------------ editing (emit the new list)
    def add(self, name: str, color: Optional[tuple[int, int, int]] = None, isthing: bool = True) -> Category:
        """Append a category with a fresh id (never one a region still uses)."""
        new_id = max({c.id for c in self.categories} | self.reserved_ids(), default=0) + 1
        category = Category(new_id, name, color or category_color(new_id), isthing)
        self._emit(self.categories + [category])
        return category

    def rename(self, category_id: int, name: str) -> None:
        self._update(category_id, name=name)

    def recolor(self, category_id: int, color: tuple[int, int, int]) -> None:
        self._update(category_id, color=color)

    def toggle_stuff(self, category_id: int) -> None:
        self._update(category_id, isthing=not self._get(category_id).isthing)

    def move(self, category_id: int, step: int) -> None:
        """Move a category up (-1) or down (+1) the list."""
        items = list(self.categories)
        i = next(k for k, c in enumerate(items) if c.id == category_id)
        j = min(max(i + step, 0), len(items) - 1)
        items.insert(j, items.pop(i))
        self._emit(items)

    def load(self, path: Path) -> list[Category]:
        """Replace the list by a label set file's categories (core.project.load_label_set).

        Categories that regions still use and the file lacks are kept at the end, so no label
        loses its name. Raises DataFormatError (naming the file) and leaves the list as it was.
        """
        loaded = load_label_set(path)
        ids = {c.id for c in loaded}
        kept = [c for c in self.categories if c.id in self.reserved_ids() and c.id not in ids]
        self._emit(loaded + kept)
        return loaded

    def remove(self, category_id: int) -> None:
        """Drop a category from the list (the window calls this once its regions are unlabelled)."""
        self._emit([c for c in self.categories if c.id != category_id])

    def _get(self, category_id: int) -> Category:
        return next(c for c in self.categories if c.id == category_id)

    def _update(self, category_id: int, **values: object) -> None:
        self._emit([replace(c, **values) if c.id == category_id else c for c in self.categories])

    def _emit(self, categories: list[Category]) -> None:
        self.set_categories(categories)
        self.changed.emit(list(categories))

    # ------------------------------------------------------------------ dialogs
    def _with_current(self, action: Callable[[int], object]) -> None:
        category_id = self.current_id()
        if category_id is not None:
            action(category_id)

    def _ask_add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add a category", "Name:")
        if ok and name.strip():
            self.add(name.strip())
            self.list.setCurrentRow(self.list.count() - 1)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a label set", "", "JSON files (*.json);;All files (*)")
        if path:
            try:
                self.load(Path(path))
            except CutTreeError as exc:
                QMessageBox.warning(self, "Load a label set", str(exc))

    def _ask_rename(self) -> None:
        category_id = self.current_id()
        if category_id is not None:
            old = self._get(category_id).name
            name, ok = QInputDialog.getText(self, "Rename category", "Name:", text=old)
            if ok and name.strip():
                self.rename(category_id, name.strip())

    def _ask_color(self) -> None:
        category_id = self.current_id()
        if category_id is not None:
            color = QColorDialog.getColor(QColor(*self._get(category_id).color), self, "Category colour")
            if color.isValid():
                self.recolor(category_id, (color.red(), color.green(), color.blue()))
