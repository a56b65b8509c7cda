"""Export of the current image or the whole project through core.export (one function per choice)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from core.export.coco import CocoOptions, export_project_coco, write_coco
from core.export.common import ExportReport, single_items
from core.export.panoptic import export_project_panoptic, write_panoptic
from core.export.semantic import export_project_semantic, write_semantic
from core.project import Category, Project
from core.tree import SegmentTree

FORMATS = {
    "coco_rle": "COCO instances, RLE masks (holes kept)",
    "coco_polygons": "COCO instances, polygons",
    "panoptic": "COCO panoptic (PNG + JSON)",
    "semantic": "Semantic PNG (255 = unlabelled)",
}


def export(fmt: str, out: Path, categories: Sequence[Category], project: Optional[Project] = None,
           current: Optional[tuple[str, SegmentTree]] = None, include_unlabelled: bool = False) -> ExportReport:
    """Write `fmt` for the whole project (when given) or the current image only."""
    out = Path(out)
    if fmt in ("coco_rle", "coco_polygons"):
        options = CocoOptions(polygons=fmt == "coco_polygons", include_unlabelled=include_unlabelled)
        if project is not None:
            return export_project_coco(project, out, options)
        return write_coco(out, single_items([current]), categories, options, ExportReport(out))
    if fmt == "panoptic":
        if project is not None:
            return export_project_panoptic(project, out)
        return write_panoptic(out, single_items([current]), categories, ExportReport(out))
    if fmt == "semantic":
        if project is not None:
            return export_project_semantic(project, out)
        return write_semantic(out, single_items([current]), categories, ExportReport(out))
    raise ValueError(f"unknown export format {fmt!r}")
