"""Bulk accept: every shown suggestion at or above a confidence, on the shown image or all images."""
from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QRadioButton, QVBoxLayout, QWidget)


class AcceptDialog(QDialog):
    """Asks for the confidence and the scope, showing how many regions each would label;
    `counts(confidence)` gives (on the shown image, on all images); `as_one`: whether sibling
    regions suggested alike are merged into one."""

    def __init__(self, confidence: float, every_image: bool, counts: Callable[[float], tuple[int, int]],
                 parent: Optional[QWidget] = None, as_one: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle("Accept confident suggestions")
        self._counts = counts
        self.confidence = QDoubleSpinBox(objectName="confidence", decimals=2, minimum=0.0, maximum=1.0,
                                         singleStep=0.01, value=confidence)
        self.confidence.setToolTip("suggestions whose confidence is at least this are accepted")
        self.this_image = QRadioButton(objectName="this_image")
        self.every_image = QRadioButton(objectName="every_image")
        (self.every_image if every_image else self.this_image).setChecked(True)
        self.as_one = QCheckBox("merge sibling regions suggested the same category into one",
                                objectName="as_one", checked=as_one)
        self.as_one.setToolTip("fewer, larger regions; for instance labels, two cars side by side would become one")
        form = QFormLayout()
        form.addRow("Confidence at least", self.confidence)
        form.addRow(self.this_image)
        form.addRow(self.every_image)
        form.addRow(self.as_one)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Accept")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        note = QLabel("Each image's accepted suggestions are one undo step on that image.", wordWrap=True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.confidence.valueChanged.connect(self._count)
        self._count()

    def _count(self) -> None:
        shown, every = self._counts(self.confidence.value())
        self.this_image.setText(f"on the shown image ({shown} regions)")
        self.every_image.setText(f"on every image ({every} regions)")
