"""Segmentation settings: encoder, model, device, method, α, τ, timestep, resolution, PAMR, cache."""
from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QLineEdit, QMessageBox, QSpinBox, QWidget)

from core.errors import SettingsError
from core.settings import DEVICES, ENCODERS, METHODS, RESIZE_MODES, Settings


class SettingsDialog(QDialog):
    """Edits a copy of Settings; `result_settings` holds the accepted values."""

    def __init__(self, settings: Settings, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Segmentation settings")
        self.result_settings = settings
        s = settings
        self.encoder = _combo(ENCODERS, s.encoder)
        self.model = QLineEdit(s.model, placeholderText="preset name, diffusers folder or .safetensors file")
        self.device = _combo(DEVICES, s.device)
        self.method = _combo(METHODS, s.method)
        self.alpha = _spin(0.1, 100.0, s.alpha, 1.0)
        self.tau = _spin(0.0, 1.0, s.tau, 0.01)
        self.tau_max = _spin(0.0, 1.0, s.tau_max, 0.01)
        self.timestep = QSpinBox(minimum=0, maximum=999, value=s.timestep)
        self.resize_mode = _combo(RESIZE_MODES, s.resize_mode)
        self.pamr = QCheckBox("refine borders with PAMR", checked=s.pamr)
        self.cache_dir = QLineEdit(s.cache_dir, placeholderText="platform cache folder")
        self.cache_size = QSpinBox(minimum=0, maximum=1_000_000, value=s.cache_size_mb, suffix=" MB")
        self.download = QCheckBox("allow downloading model weights", checked=s.allow_download)
        form = QFormLayout(self)
        for label, widget in (("Encoder", self.encoder), ("Model", self.model), ("Device", self.device),
                              ("Cut method", self.method), ("α (affinity exponent)", self.alpha),
                              ("τ (default granularity)", self.tau), ("τ max (tree depth)", self.tau_max),
                              ("Timestep", self.timestep), ("Resolution", self.resize_mode), ("", self.pamr),
                              ("Feature cache folder", self.cache_dir), ("Cache size", self.cache_size),
                              ("", self.download)):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> Settings:
        """The edited settings (raises SettingsError naming a bad value)."""
        return self.result_settings.replace(
            encoder=self.encoder.currentText(), model=self.model.text().strip() or "ssd-1b",
            device=self.device.currentText(), method=self.method.currentText(), alpha=self.alpha.value(),
            tau=self.tau.value(), tau_max=self.tau_max.value(), timestep=self.timestep.value(),
            resize_mode=self.resize_mode.currentText(), pamr=self.pamr.isChecked(),
            cache_dir=self.cache_dir.text().strip(), cache_size_mb=self.cache_size.value(),
            allow_download=self.download.isChecked())

    def accept(self) -> None:
        try:
            self.result_settings = self.values()
        except SettingsError as exc:
            QMessageBox.warning(self, "Invalid setting", str(exc))
            return
        super().accept()


def _combo(choices: tuple[str, ...], current: str) -> QComboBox:
    box = QComboBox()
    box.addItems(list(choices))
    box.setCurrentText(current)
    return box


def _spin(lo: float, hi: float, value: float, step: float) -> QDoubleSpinBox:
    return QDoubleSpinBox(minimum=lo, maximum=hi, value=value, singleStep=step, decimals=3)
