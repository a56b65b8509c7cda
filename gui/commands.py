"""Undo commands: each wraps core.tree Edits (already applied when pushed), or a whole new
tree for an image (a re-cut), so that any change of the annotator's work can be undone."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
from PySide6.QtGui import QUndoCommand, QUndoStack

from core.tree import Cutter, Edit, History, Node, SegmentTree

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


class ReplaceTreeCommand(QUndoCommand):
    """An image's tree replaced by a re-cut; undo brings the old tree (and its edits) back.
    `owner` is the image document: its `tree` is swapped, and its `cutter` is the re-cut's on
    the first redo, none after an undo or redo (the session prepares one when a finest region
    is split); the stack keeping every re-cut's cutters held tens of MB per image."""

    def __init__(self, owner: object, tree: SegmentTree, cutter: Optional[Cutter], text: str,
                 changed: Callable[[], None]) -> None:
        super().__init__(text)
        self.owner = owner
        self.trees = (owner.tree, tree)          # type: ignore[attr-defined]
        self.cutter = cutter
        self.changed = changed

    def redo(self) -> None:
        self._use(1)

    def undo(self) -> None:
        self._use(0)

    def _use(self, side: int) -> None:
        self.owner.tree, self.owner.cutter, self.cutter = self.trees[side], self.cutter, None   # type: ignore[attr-defined]
        self.changed()


def history_of(stack: QUndoStack, tree: SegmentTree, limit: int) -> History:
    """The edits of `tree` on an undo stack, the last `limit` done ones (what a reopened project
    can undo); the stack's commands from before a re-cut belong to another tree and stop it."""
    history = History(tree)
    for index in range(stack.index() - 1, -1, -1):
        command = stack.command(index)
        if not isinstance(command, TreeEditCommand) or command.tree is not tree or len(history.done) >= limit:
            break
        history.done[:0] = command.edits
    history.done = history.done[-limit:]
    return history


def push_restored(stack: QUndoStack, tree: SegmentTree, history: History,
                  changed: Callable[[Sequence[Edit]], None]) -> None:
    """Put the done edits of a history read from a file back on an image's undo stack."""
    for edit in history.done:
        stack.push(TreeEditCommand(tree, edit, edit.kind, changed))


def changed_rows(tree: SegmentTree, edits: Sequence[Edit]) -> set[int]:
    """Nodes whose layer-panel row may show something new after these edits: the nodes whose
    shown values changed (not merely expanded or collapsed: the panel compares the frontier
    itself), and the sub-regions of a relabelled or (un)ignored node (they show the inherited
    category, and lose or regain their suggestions)."""
    rows: set[int] = set()
    for edit in edits:
        if edit.pixels is not None:      # pixels moved: every region holding their atoms has a new area
            for atom in np.unique(np.concatenate([edit.atoms_before, edit.atoms_after])):
                if atom < tree.n_atoms:
                    rows.update(tree.path_to_atom(int(atom)))
        for nid, before in edit.before.items():
            after = edit.after.get(nid)
            # a label or an ignore also changes what the sub-regions show (inherited, suggestions)
            if before is None or after is None or before.category != after.category or before.ignored != after.ignored:
                rows.add(nid)
                rows.update(tree.descendants(nid) if nid in tree.nodes else ())
            elif _shown_values_differ(before, after):
                rows.add(nid)
    return rows


def _shown_values_differ(before: Node, after: Node) -> bool:
    return (before.name != after.name or before.rejected != after.rejected or before.visible != after.visible
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
