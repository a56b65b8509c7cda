"""Export of the current image or the whole project through the format table, off the GUI thread.

`export` runs a format of `core.export.formats` on the project or on a copy of the current tree;
`ExportThread` runs one export in a QThread with progress and cancel, so that writing a large
project never freezes the window. What it exports is fixed before it starts: project exports
read the saved annotation files, and the current image is exported from a copy of its tree, so
edits made meanwhile cannot race it.
"""
from __future__ import annotations

import copy
import traceback
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import QThread, Signal

from core.errors import Cancelled, CutTreeError
from core.export.common import ExportReport, ExportSource, project_source, single_items
from core.export.formats import run_export
from core.jobs import CancelToken, Progress
from core.project import Category, Project
from core.tree import SegmentTree


def export(fmt: str, out: Path, categories: Sequence[Category], project: Optional[Project] = None,
           current: Optional[tuple[str, SegmentTree, Optional[Path]]] = None,
           options: Optional[dict[str, Any]] = None, progress: Optional[Progress] = None,
           cancel: Optional[CancelToken] = None) -> ExportReport:
    """Write `fmt` for the whole project (when given) or the current image (name, tree, image path)."""
    if project is not None:
        source = project_source(project)
    else:
        name, tree, path = current
        source = ExportSource(single_items([(name, tree)], [path]), list(categories))
    return run_export(fmt, source, Path(out), options, progress, cancel)


def snapshot(tree: SegmentTree) -> SegmentTree:
    """A private copy of a tree for a background export (the annotator keeps editing the original)."""
    return copy.deepcopy(tree)


class ExportThread(QThread):
    """Runs `work(progress, cancel)` in its own thread; answers with exactly one of the signals."""

    progressed = Signal(str, float)        # stage, fraction
    succeeded = Signal(object)             # ExportReport
    failed = Signal(str)                   # message (also for a cancelled export)

    def __init__(self, work: Callable[[Progress, CancelToken], ExportReport]) -> None:
        super().__init__()
        self.setObjectName("cuttree-export")
        self.work = work
        self.cancel = CancelToken()

    def run(self) -> None:
        try:
            report = self.work(self.progressed.emit, self.cancel)
        except Cancelled:
            self.failed.emit("export cancelled")
        except (OSError, CutTreeError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must become a message, not a crash
            self.failed.emit(f"unexpected error: {exc!r}\n\n{traceback.format_exc(limit=5)}")
        else:
            self.succeeded.emit(report)
