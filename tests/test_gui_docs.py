"""The help dialog and the user guide list the same shortcuts as the window binds."""
from pathlib import Path

from PySide6.QtWidgets import QTableWidget

from gui.dialogs.help_dialog import HelpDialog, shortcut_rows

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user_guide.md"


def test_help_dialog_and_user_guide_list_every_shortcut(qtbot):
    rows = shortcut_rows()
    dialog = HelpDialog()
    qtbot.addWidget(dialog)
    table = dialog.findChild(QTableWidget)
    shown = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
    assert shown == rows and ("B", "Brush: drag to paint pixels into the selected region") in shown
    guide = GUIDE.read_text(encoding="utf-8")
    missing = [f"| {keys} | {text} |" for keys, text in rows if f"| {keys} | {text} |" not in guide]
    assert not missing, "docs/user_guide.md lacks:\n" + "\n".join(missing)
