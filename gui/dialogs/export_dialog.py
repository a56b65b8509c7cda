"""Export dialog: format, its options, scope (current image or project), destination; a background run.

Formats and their options come from the table in `core.export.formats` (the CLI reads the same
table): choosing a format shows its options (`FormatOptions`). The export runs in an
`ExportThread`: the dialog shows its progress and its Cancel button cancels the export (the
window keeps painting meanwhile); a summary box says what was written.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QProgressBar,
                               QPushButton, QRadioButton, QWidget)

from core.errors import CutTreeError
from core.export.common import ExportReport
from core.export.formats import FORMATS, ExportFormat, Option
from core.jobs import CancelToken, Progress
from gui.exporting import ExportThread, export, snapshot

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
        for fmt in FORMATS.values():
            self.format.addItem(fmt.label, fmt.name)
        self.options = FormatOptions()
        self.format.currentIndexChanged.connect(self._format_changed)
        self.options.changed.connect(self._target_changed)
        self.current = QRadioButton("current image")
        self.whole = QRadioButton("whole project")
        self.scope = QButtonGroup(self)          # one choice: the current image or the whole project
        self.scope.addButton(self.current)
        self.scope.addButton(self.whole)
        self.whole.setEnabled(session.project is not None)
        (self.whole if session.project is not None else self.current).setChecked(True)
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
        form.addRow(self.options)
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
        self._format_changed()

    def chosen_format(self) -> ExportFormat:
        return FORMATS[self.format.currentData()]

    def _format_changed(self) -> None:
        """Show the chosen format's options; point the destination at that format's usual name."""
        fmt = self.chosen_format()
        self.options.show_options(fmt.all_options())
        path = Path(self.path.text()).expanduser()
        self.path.setText(str(path.with_name(fmt.default_name)))

    def _target_changed(self) -> None:
        """Copied or linked images make a dataset folder: drop a `.json` from the destination."""
        path = Path(self.path.text()).expanduser()
        if self.chosen_format().target_for(self.options.values()) == "folder" and path.suffix == ".json":
            self.path.setText(str(path.with_suffix("")))

    def _browse(self) -> None:
        if self.chosen_format().target_for(self.options.values()) == "folder":
            name = QFileDialog.getExistingDirectory(self, "Export folder", self.path.text())
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
        image = Path(doc.source) if doc is not None and isinstance(doc.source, str) else None
        current = None if project else (doc.name, snapshot(doc.tree), image)
        return partial(export, self.format.currentData(), out, list(w.categories), project, current,
                       self.options.values())

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
        for widget in (self.format, self.current, self.whole, self.options, self.path):
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


class FormatOptions(QWidget):
    """The widgets of one format's options, built from its `Option` rows."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.widgets: dict[str, tuple[Option, QWidget]] = {}

    def show_options(self, options: tuple[Option, ...]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.widgets = {}
        for option in options:
            widget = _option_widget(option)
            widget.setToolTip(option.help)
            if isinstance(widget, QComboBox):
                widget.currentIndexChanged.connect(lambda _index: self.changed.emit())
            self.widgets[option.key] = (option, widget)
            self.form.addRow("" if option.kind is bool else option.label, widget)

    def widget(self, key: str) -> QWidget:
        return self.widgets[key][1]

    def values(self) -> dict[str, Any]:
        """The options that differ from their defaults, as `run_export` takes them."""
        out = {}
        for key, (option, widget) in self.widgets.items():
            value = _option_value(option, widget)
            if value != option.default:
                out[key] = value
        return out


def _option_widget(option: Option) -> QWidget:
    if option.kind is bool:
        return QCheckBox(option.label, checked=bool(option.default))
    if option.kind == "choice":
        box = QComboBox()
        for choice in option.choices:
            box.addItem(choice, choice)
        box.setCurrentIndex(option.choices.index(option.default))
        return box
    if option.kind is float:
        spin = QDoubleSpinBox(decimals=2, singleStep=0.05 if option.default < 1 else 0.5)
        spin.setRange(0.0, 0.99 if option.default < 1 else 100.0)
        spin.setValue(float(option.default))
        return spin
    edit = QLineEdit()
    edit.setPlaceholderText("default" if option.default in (None, ()) else str(option.default))
    return edit


def _option_value(option: Option, widget: QWidget) -> Any:
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QDoubleSpinBox):
        return widget.value()
    text = widget.text().strip()
    if option.kind == "list":
        return tuple(v.strip() for v in text.split(",") if v.strip())
    return Path(text).expanduser() if text else None


def _wrap(layout: QHBoxLayout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget
