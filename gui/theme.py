"""Light and dark palettes on the Fusion style; the default follows the system colour scheme."""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def system_is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(dark: Optional[bool] = None) -> None:
    """Fusion style with a dark or light palette (None = as the system)."""
    app = QApplication.instance()
    app.setStyle("Fusion")
    if dark is None:
        dark = system_is_dark()
    app.setPalette(_dark_palette() if dark else app.style().standardPalette())


def _dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(35, 35, 38), QColor(48, 48, 52), QColor(225, 225, 225)
    roles = {QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
             QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: window,
             QPalette.ColorRole.ToolTipBase: window, QPalette.ColorRole.ToolTipText: text,
             QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: window,
             QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.Highlight: QColor(64, 128, 220),
             QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
             QPalette.ColorRole.Link: QColor(100, 160, 255), QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140)}
    for role, color in roles.items():
        p.setColor(role, color)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(120, 120, 120))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(120, 120, 120))
    return p
