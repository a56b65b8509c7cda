"""Undo commands: each wraps one core.tree Edit (already applied when pushed)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PySide6.QtGui import QUndoCommand

from core.tree import Edit, Node, SegmentTree

GRANULARITY_ID = 1


class TreeEditCommand(QUndoCommand):
    """Undo/redo one tree edit; `changed` refreshes the views afterwards."""

    def __init__(self, tree: SegmentTree, edit: Edit, text: str,
                 changed: Callable[[Sequence[Edit]], None]) -> None:
        super().__init__(text)
        self.tree = tree
        self.edits = [edit]
        self.changed = changed
        self._applied = True     # the edit was made before the command was pushed

    def redo(self) -> None:
        if self._applied:
            self._applied = False
        else:
            for edit in self.edits:
                self.tree.redo(edit)
        self.changed(self.edits)

    def undo(self) -> None:
        for edit in reversed(self.edits):
            self.tree.undo(edit)
        self.changed(self.edits)


class GranularityCommand(TreeEditCommand):
    """A granularity change; consecutive slider steps merge into one undo step."""

    def id(self) -> int:
        return GRANULARITY_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, GranularityCommand) or other.tree is not self.tree:
            return False
        self.edits.extend(other.edits)
        self.setText(other.text())
        return True


def changed_rows(tree: SegmentTree, edits: Sequence[Edit]) -> set[int]:
    """Nodes whose layer-panel row may show something new after these edits: the nodes whose
    shown values changed (not merely expanded or collapsed: the panel compares the frontier
    itself), and the sub-regions of a relabelled node (they show the inherited category)."""
    rows: set[int] = set()
    for edit in edits:
        for nid, before in edit.before.items():
            after = edit.after.get(nid)
            if before is None or after is None or before.category != after.category:
                rows.add(nid)
                rows.update(tree.descendants(nid) if nid in tree.nodes else ())
            elif _shown_values_differ(before, after):
                rows.add(nid)
    return rows


def _shown_values_differ(before: Node, after: Node) -> bool:
    return (before.name != after.name or before.ignored != after.ignored or before.visible != after.visible
            or before.color != after.color or before.cost != after.cost
            or (before.atoms is not after.atoms and not np.array_equal(before.atoms, after.atoms)))


def changes_structure(edits: Sequence[Edit]) -> bool:
    """True when an edit adds, removes or re-parents nodes (the layer panel must be rebuilt)."""
    for edit in edits:
        for nid, before in edit.before.items():
            after = edit.after.get(nid)
            if before is None or after is None or before.parent != after.parent or before.children != after.children:
                return True
    return False
