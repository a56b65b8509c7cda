"""Segmentation settings: one editor per core.settings.Settings field, built from its metadata;
settings that cannot work together are explained, with OK disabled, before they are accepted."""
from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QGridLayout, QGroupBox, QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget)

from core.errors import SettingsError
from core.settings import (BOOL, CHOICE, DEFAULTS, FLOAT, FLOATS, INT, INTS, META, NONE, RECUT, REENCODE, Meta,
                           Settings, invalidation, parse_value, reads)

EFFECTS = {NONE: "", RECUT: "OK cuts the images again from their features.",
           REENCODE: "OK computes the images' features again (cached ones are reused)."}


class Editor:
    """One setting's widget, with how to read it and be told of a change."""

    def __init__(self, widget: QWidget, read: Callable[[], Any], changed: Any) -> None:
        self.widget, self.read, self.changed = widget, read, changed


class SettingsDialog(QDialog):
    """Edits a copy of Settings; `result_settings` holds the accepted values."""

    def __init__(self, settings: Settings, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Segmentation settings")
        self.result_settings = settings
        self.editors = {name: make_editor(name, meta, getattr(settings, name)) for name, meta in META.items()}
        layout = QVBoxLayout(self)
        columns = QGridLayout()         # the groups in two columns: the dialog fits a laptop screen
        layout.addLayout(columns)
        forms: dict[str, QFormLayout] = {}
        for name, meta in META.items():
            if meta.group not in forms:
                box = QGroupBox(meta.group)
                columns.addWidget(box, len(forms) // 2, len(forms) % 2)
                forms[meta.group] = QFormLayout(box)
            forms[meta.group].addRow("" if meta.kind == BOOL else meta.label, self.editors[name].widget)
            self.editors[name].changed.connect(self._update)
        self.problem = QLabel(wordWrap=True, styleSheet="color: #c0392b")
        self.effect = QLabel(wordWrap=True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for widget in (self.problem, self.effect, self.buttons):
            layout.addWidget(widget)
        self._update()

    def values(self) -> Settings:
        """The edited settings (raises SettingsError naming a bad value)."""
        return self.result_settings.replace(**{name: editor.read() for name, editor in self.editors.items()})

    def pending(self) -> tuple[Optional[Settings], str]:
        """The edited settings and '' when they can be used, else None and why not."""
        try:
            settings = self.values()
        except SettingsError as exc:
            return None, str(exc)
        problem = settings.conflict()
        return (None, problem) if problem else (settings, "")

    def _update(self, *_: Any) -> None:
        settings, problem = self.pending()
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        effect = EFFECTS[invalidation(self.result_settings, settings)] if settings else ""
        self.effect.setText(effect)
        self.effect.setVisible(bool(effect))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(settings is not None)
        if settings is not None:     # grey out what these settings do not read
            for name, editor in self.editors.items():
                editor.widget.setEnabled(reads(settings, name))

    def accept(self) -> None:
        settings, _ = self.pending()
        if settings is None:
            return
        self.result_settings = settings
        super().accept()


def make_editor(name: str, meta: Meta, value: Any) -> Editor:
    """The widget that edits one setting, per its kind."""
    if meta.kind == BOOL:
        box = QCheckBox(meta.label, checked=value)
        editor = Editor(box, box.isChecked, box.toggled)
    elif meta.kind == CHOICE or meta.suggestions:
        combo = QComboBox(editable=meta.kind != CHOICE)
        combo.addItems(list(meta.choices or meta.suggestions))
        combo.setCurrentText(str(value))
        read = combo.currentText if meta.kind == CHOICE else lambda: combo.currentText().strip() or DEFAULTS[name]
        editor = Editor(combo, read, combo.currentTextChanged)
    elif meta.kind == INT:
        spin = QSpinBox(minimum=int(meta.lo), maximum=int(meta.hi), value=value, singleStep=int(meta.step),
                        specialValueText=meta.special)
        editor = Editor(spin, spin.value, spin.valueChanged)
    elif meta.kind == FLOAT:
        spin = QDoubleSpinBox(minimum=meta.lo, maximum=meta.hi, value=value, singleStep=meta.step, decimals=3)
        editor = Editor(spin, spin.value, spin.valueChanged)
    else:
        line = QLineEdit(", ".join(map(str, value)) if meta.kind in (INTS, FLOATS) else value,
                         placeholderText=meta.special)
        editor = Editor(line, lambda: parse_value(name, line.text().strip()), line.textChanged)
    editor.widget.setToolTip(meta.help)
    return editor
