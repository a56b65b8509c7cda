"""The undo history view follows pushes, merges, undo, truncation and stack switches; a click
on a row undoes or redoes up to it."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from shiboken6 import Shiboken

from gui.history_view import HistoryView


class Step(QUndoCommand):
    """Appends its name to a log on redo, removes it on undo; mergeable steps merge."""

    def __init__(self, log: list[str], name: str, mergeable: bool = False) -> None:
        super().__init__(name)
        self.log, self.names, self.mergeable = log, [name], mergeable

    def id(self) -> int:
        return 7 if self.mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        self.names += other.names
        self.setText(other.text())
        return True

    def redo(self) -> None:
        self.log.extend(self.names)      # on push, `names` is this step alone

    def undo(self) -> None:
        del self.log[-len(self.names):]


def rows(view: HistoryView) -> list[str]:
    return [view.rows.item(r).text() for r in range(view.rows.rowCount())]


def current(view: HistoryView) -> int:
    return view.currentIndex().row()


def test_history_rows_follow_the_stack_and_a_click_jumps(qtbot):
    group = QUndoGroup()
    stack, other = QUndoStack(group), QUndoStack(group)
    group.setActiveStack(stack)
    view = HistoryView(group, "segmented")
    qtbot.addWidget(view)
    view.show()
    log: list[str] = []
    assert rows(view) == ["segmented"] and current(view) == 0

    for name in ("merge", "label"):
        stack.push(Step(log, name))
    stack.push(Step(log, "granularity 0.1", mergeable=True))
    stack.push(Step(log, "granularity 0.2", mergeable=True))      # merged into the step before
    assert rows(view) == ["segmented", "merge", "label", "granularity 0.2"] and current(view) == 3

    stack.undo()
    stack.undo()
    assert current(view) == 1 and rows(view)[-1] == "granularity 0.2"   # undone rows stay, for redo
    stack.push(Step(log, "split"))                                       # drops the undone rows
    assert rows(view) == ["segmented", "merge", "split"] and current(view) == 2 and log == ["merge", "split"]

    first = view.rows.index(1, 0)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(first).center())
    assert stack.index() == 1 and log == ["merge"]
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(view.rows.index(0, 0)).center())
    assert stack.index() == 0 and log == []

    group.setActiveStack(other)
    assert rows(view) == ["segmented"]
    other.push(Step([], "rename"))
    group.setActiveStack(stack)
    assert rows(view) == ["segmented", "merge", "split"] and current(view) == 0
    group.setActiveStack(None)
    assert rows(view) == ["segmented"]
    group.setActiveStack(other)
    Shiboken.delete(other)                  # an image closed while its history is shown
    assert rows(view) == ["segmented"]
    stack.push(Step(log, "ignore"))         # the remaining stack still works
    group.setActiveStack(stack)
    assert rows(view)[-1] == "ignore"
