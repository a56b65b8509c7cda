"""Export of the current image or the whole project through core.export, off the GUI thread.

`export` picks the core function for a format; `ExportThread` runs one export in a QThread
with progress and cancel, so that writing a large project never freezes the window. What it
exports is fixed before it starts: project exports read the saved annotation files, and the
current image is exported from a copy of its tree, so edits made meanwhile cannot race it.
"""
from __future__ import annotations

import copy
import traceback
from pathlib import Path
from typing import Callable, Optional, Sequence

from PySide6.QtCore import QThread, Signal

from core.errors import Cancelled, CutTreeError
from core.export.coco import CocoOptions, export_project_coco, write_coco
from core.export.common import ExportReport, single_items
from core.export.panoptic import export_project_panoptic, write_panoptic
from core.export.semantic import export_project_semantic, write_semantic
from core.jobs import CancelToken, Progress
from core.project import Category, Project
from core.tree import SegmentTree

FORMATS = {
    "coco_rle": "COCO instances, RLE masks (holes kept)",
    "coco_polygons": "COCO instances, polygons",
    "panoptic": "COCO panoptic (PNG + JSON)",
    "semantic": "Semantic PNG (255 = unlabelled)",
}


def export(fmt: str, out: Path, categories: Sequence[Category], project: Optional[Project] = None,
           current: Optional[tuple[str, SegmentTree]] = None, include_unlabelled: bool = False,
           progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ExportReport:
    """Write `fmt` for the whole project (when given) or the current image only."""
    out = Path(out)
    if fmt in ("coco_rle", "coco_polygons"):
        options = CocoOptions(polygons=fmt == "coco_polygons", include_unlabelled=include_unlabelled)
        if project is not None:
            return export_project_coco(project, out, options, progress, cancel)
        return write_coco(out, single_items([current]), categories, options, ExportReport(out), progress, cancel)
    if fmt == "panoptic":
        if project is not None:
            return export_project_panoptic(project, out, progress=progress, cancel=cancel)
        return write_panoptic(out, single_items([current]), categories, ExportReport(out),
                              progress=progress, cancel=cancel)
    if fmt == "semantic":
        if project is not None:
            return export_project_semantic(project, out, progress, cancel)
        return write_semantic(out, single_items([current]), categories, ExportReport(out), progress, cancel)
    raise ValueError(f"unknown export format {fmt!r}")


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
