"""One image of the session: its source, status, pixels, tree, cutter and undo stack."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PySide6.QtGui import QUndoStack

from core.tree import Cutter, History, SegmentTree

NOT_SEGMENTED, QUEUED, WORKING, DONE, EDITED, ERROR = (
    "not segmented", "queued", "working", "done", "edited", "error")


@dataclass
class ImageDoc:
    """An image in the file list. `key` is its path (or a `sample:` name for built-in images)."""

    key: str
    name: str
    source: object                       # a path string or a function giving the pixels
    project_id: Optional[int] = None
    status: str = NOT_SEGMENTED
    error: str = ""
    image: Optional[np.ndarray] = None
    tree: Optional[SegmentTree] = None
    cutter: Optional[Cutter] = None
    undo: QUndoStack = field(default_factory=QUndoStack)
    base_edited: bool = False            # the tree below the undo stack holds edits (loaded from a project)
    saved_history: Optional[History] = None   # undo history read from the project, until the session takes it
    locked: bool = False                 # its annotation file was refused: never segmented or saved over
    recut: Optional[str] = None          # how a re-cut in flight replaces an edited tree (session.CARRY / DISCARD)

    @property
    def ready(self) -> bool:
        return self.tree is not None and self.image is not None

    @property
    def edited(self) -> bool:
        """The tree holds the annotator's work (an edit not undone, or edits from the project)."""
        return self.tree is not None and (self.undo.index() > 0 or self.base_edited)

    @property
    def holds_work(self) -> bool:
        """A new tree would lose something of the annotator's: edits, edits undone but still
        redoable, or labels, ignore marks and rejections in the tree (however they got there)."""
        if self.tree is None:
            return False
        saved = self.saved_history
        return (self.edited or self.undo.canRedo() or bool(saved and (saved.done or saved.undone))
                or self.tree.holds_marks())
