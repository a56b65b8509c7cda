"""The keyboard shortcut list (generated from gui.shortcuts, so it cannot drift)."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from gui.shortcuts import EXTRA_HELP, SHORTCUTS


def shortcut_rows() -> list[tuple[str, str]]:
    """(keys, what they do) for every shortcut (menu-only actions are left out)."""
    rows = [(", ".join(keys), f"{text.replace('&', '').rstrip('…')}: {tip}")
            for text, keys, tip in SHORTCUTS.values() if keys]
    return rows + list(EXTRA_HELP)


class HelpDialog(QDialog):
    """A two-column table of keys and actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows()
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        for r, (keys, text) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(keys))
            table.setItem(r, 1, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(640, 640)
