"""The Qt binding must not leak references to None (PySide6 6.12.0 on Python < 3.12 does: every
void method call takes one away, and the interpreter aborts once None's count reaches zero;
docs/decisions/0403-pyside6-version.md)."""
import sys

from PySide6.QtWidgets import QApplication, QLabel


def test_void_qt_calls_keep_the_reference_count_of_none(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    app = QApplication.instance()
    before = sys.getrefcount(None)
    for _ in range(300):                  # few enough not to exhaust None where it leaks
        label.setText("x")
        label.update()
        app.processEvents()
    assert sys.getrefcount(None) >= before - 100
