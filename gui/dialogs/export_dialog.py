"""Export dialog: format, scope (current image or project), destination; then a summary."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLineEdit, QMessageBox, QPushButton, QRadioButton, QWidget)

from core.errors import CutTreeError
from gui.exporting import FORMATS, export

if TYPE_CHECKING:
    from gui.main_window import MainWindow


class ExportDialog(QDialog):
    """Asks what to export and where, runs the export, shows what was written."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Export")
        self.format = QComboBox()
        for key, text in FORMATS.items():
            self.format.addItem(text, key)
        self.current = QRadioButton("current image", checked=True)
        self.whole = QRadioButton("whole project")
        self.whole.setEnabled(window.project is not None)
        self.whole.setChecked(window.project is not None)
        self.unlabelled = QCheckBox("export unlabelled regions too (as class-agnostic 'object')")
        default = (window.project.folder if window.project else Path.home()) / "export" / "instances.json"
        self.path = QLineEdit(str(default))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        scope = QHBoxLayout()
        scope.addWidget(self.current)
        scope.addWidget(self.whole)
        form = QFormLayout(self)
        form.addRow("Format", self.format)
        form.addRow("Images", scope)
        form.addRow("", self.unlabelled)
        form.addRow("Write to", _wrap(path_row))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        if self.format.currentData() == "semantic":
            name = QFileDialog.getExistingDirectory(self, "Folder for the PNGs", self.path.text())
        else:
            name, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(), "JSON (*.json)")
        if name:
            self.path.setText(name)

    def run_export(self) -> list[str]:
        """Export with the chosen options; returns the summary lines."""
        w = self.window_
        doc = w.doc
        project = w.project if self.whole.isChecked() else None
        if project is None and (doc is None or doc.tree is None):
            raise CutTreeError("the current image has no segments to export yet")
        if project is not None:
            w.save()
        out = Path(self.path.text()).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        report = export(self.format.currentData(), out, w.categories, project,
                        None if project else (doc.name, doc.tree), self.unlabelled.isChecked())
        return report.lines()

    def accept(self) -> None:
        try:
            lines = self.run_export()
        except (OSError, CutTreeError) as exc:
            QMessageBox.critical(self, "Export failed", str(exc))
            return
        QMessageBox.information(self, "Export finished", "\n".join(lines))
        super().accept()


def _wrap(layout: QHBoxLayout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget
