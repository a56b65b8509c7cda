"""Export dialog: format, scope (current image or project), destination; a background run; a summary.

The export runs in an `ExportThread`: the dialog shows its progress and its Cancel button
cancels the export (the window keeps painting meanwhile); a summary box says what was written.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QProgressBar,
                               QPushButton, QRadioButton, QWidget)

from core.errors import CutTreeError
from core.export.common import ExportReport
from core.jobs import CancelToken, Progress
from gui.exporting import FORMATS, ExportThread, export, snapshot

if TYPE_CHECKING:
    from gui.session import Session


class ExportDialog(QDialog):
    """Asks what to export and where, runs the export in the background, shows what was written."""

    ended = Signal(bool, list)            # succeeded, summary lines (or the error message)

    def __init__(self, session: "Session", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Export")
        self.format = QComboBox()
        for key, text in FORMATS.items():
            self.format.addItem(text, key)
        self.current = QRadioButton("current image")
        self.whole = QRadioButton("whole project")
        self.scope = QButtonGroup(self)          # one choice: the current image or the whole project
        self.scope.addButton(self.current)
        self.scope.addButton(self.whole)
        self.whole.setEnabled(session.project is not None)
        (self.whole if session.project is not None else self.current).setChecked(True)
        self.unlabelled = QCheckBox("export unlabelled regions too (as class-agnostic 'object')")
        default = (session.project.folder if session.project else Path.home()) / "export" / "instances.json"
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
        self.stage = QLabel()
        self.progress = QProgressBar(textVisible=True)
        self.progress.setRange(0, 100)
        self.progress.hide()
        form.addRow(self.stage, self.progress)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.thread_: Optional[ExportThread] = None
        self._closing = False             # Cancel was pressed during an export: close once it stops

    def _browse(self) -> None:
        if self.format.currentData() == "semantic":
            name = QFileDialog.getExistingDirectory(self, "Folder for the PNGs", self.path.text())
        else:
            name, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(), "JSON (*.json)")
        if name:
            self.path.setText(name)

    def prepare(self) -> Callable[[Progress, CancelToken], ExportReport]:
        """Fix what to export (on the GUI thread): save the project or copy the current tree."""
        w = self.session
        doc = w.doc
        project = w.project if self.whole.isChecked() else None
        if project is None and (doc is None or doc.tree is None):
            raise CutTreeError("the current image has no segments to export yet")
        if project is not None:
            w.save()
        out = Path(self.path.text()).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        current = None if project else (doc.name, snapshot(doc.tree))
        return partial(export, self.format.currentData(), out, list(w.categories), project, current,
                       self.unlabelled.isChecked())

    def start_export(self) -> Optional[ExportThread]:
        """Start the export in its thread; None (and a message) when it cannot start."""
        try:
            work = self.prepare()
        except (OSError, CutTreeError) as exc:
            QMessageBox.critical(self, "Export failed", str(exc))
            return None
        self.thread_ = ExportThread(lambda progress, cancel: work(progress=progress, cancel=cancel))
        # bound methods of this dialog (a QObject of the GUI thread): queued, run on the GUI thread
        self.thread_.progressed.connect(self._progressed)
        self.thread_.succeeded.connect(self._succeeded)
        self.thread_.failed.connect(self._failed)
        self._set_running(True)
        self.thread_.start()
        return self.thread_

    def _progressed(self, stage: str, fraction: float) -> None:
        self.stage.setText(stage)
        self.progress.setValue(int(100 * fraction))

    def _succeeded(self, report: ExportReport) -> None:
        self._ended(True, report.lines())

    def _failed(self, message: str) -> None:
        self._ended(False, [message])

    def _set_running(self, running: bool) -> None:
        for widget in (self.format, self.current, self.whole, self.unlabelled, self.path):
            widget.setEnabled(not running and (widget is not self.whole or self.session.project is not None))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not running)
        self.progress.setVisible(running)
        self.stage.setText("exporting…" if running else "")

    def _ended(self, succeeded: bool, lines: list[str]) -> None:
        """The export finished, failed or was cancelled: say so, then close (or let the user retry)."""
        if self.thread_ is not None:
            self.thread_.wait()
            self.thread_ = None
        self._set_running(False)
        self.ended.emit(succeeded, lines)
        if self._closing:
            super().reject()
        elif succeeded:
            QMessageBox.information(self, "Export finished", "\n".join(lines))
            super().accept()
        else:
            QMessageBox.warning(self, "Export did not finish", "\n".join(lines))

    def accept(self) -> None:
        if self.thread_ is None:
            self.start_export()

    def reject(self) -> None:
        """Cancel: stops a running export first (the dialog closes when it has stopped)."""
        if self.thread_ is not None:
            self.thread_.cancel.cancel()
            self._closing = True
            self.stage.setText("cancelling…")
            return
        super().reject()


def _wrap(layout: QHBoxLayout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget
