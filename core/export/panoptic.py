"""COCO panoptic export: one RGB PNG per image (id = R + 256 G + 256^2 B, 0 = void) and a JSON.

Layout as in cocodataset/panopticapi: `<out>.json` with `annotations[].segments_info` and
categories carrying `isthing` and `color`, the PNGs in the folder `<out stem>/` next to it.
Stuff categories are merged into one segment per image (as COCO panoptic does); unlabelled and
ignored regions are void. Each PNG is read back and compared right after it is written.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from core.atomic_io import atomic_write_png
from core.export import ExportError
from core.export.common import CategoryMap, ExportItem, ExportReport, iter_images, project_items, publish
from core.export.regions import ExportImage
from core.export.selfcheck import check_panoptic_png, id_to_rgb
from core.jobs import CancelToken, Progress
from core.project import Category, Project
from core.safe_json import load_json

MAX_SEGMENTS = 256 ** 3 - 1


def export_project_panoptic(project: Project, out: Path, merge_stuff: bool = True,
                            progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None,
                            include_suggested: bool = False) -> ExportReport:
    """Write `<out>` (JSON) and `<out stem>/` (PNGs) for every annotated image of the project."""
    report = ExportReport(Path(out))
    return write_panoptic(out, project_items(project, report, include_suggested), project.categories, report,
                          merge_stuff, progress, cancel)


def write_panoptic(out: Path, items: Sequence[ExportItem], categories: Sequence[Category], report: ExportReport,
                   merge_stuff: bool = True, progress: Optional[Progress] = None,
                   cancel: Optional[CancelToken] = None) -> ExportReport:
    out = Path(out)
    png_dir = out.with_suffix("")
    if png_dir == out:
        raise ExportError(f"{out}: the panoptic JSON needs a file extension (e.g. panoptic.json)")
    cmap = CategoryMap(categories)
    merge = cmap.stuff_ids() if merge_stuff else set()
    images, annotations, used = [], [], set()
    for image in iter_images(items, cmap, merge, report, progress, cancel, "exporting panoptic"):
        png_name = _png_name(image, used)
        segments = _segments(image)
        png_path = png_dir / png_name
        atomic_write_png(png_path, id_to_rgb(image.labels + 1), compress_level=1)
        check_panoptic_png(png_path, image, segments)
        images.append({"id": image.image_id, "file_name": image.file_name,
                       "width": image.width, "height": image.height})
        annotations.append({"image_id": image.image_id, "file_name": png_name, "segments_info": segments})
        report.annotations += len(segments)
    report.images = len(images)
    data = {
        "info": {"description": "Exported by CutTree (COCO panoptic)", "version": "1.0",
                 "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "licenses": [], "images": images, "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory or c.name,
                        "isthing": int(c.isthing), "color": list(c.color)} for c in cmap.categories],
    }
    publish(out, json.dumps(data, separators=(",", ":")).encode("utf-8"), lambda p: _check_json(p, data))
    return report


def _segments(image: ExportImage) -> list[dict[str, Any]]:
    if len(image.regions) > MAX_SEGMENTS:
        raise ExportError(f"{image.file_name!r}: {len(image.regions)} segments do not fit a panoptic PNG")
    out = []
    for index, region in enumerate(image.regions):
        rows, cols = region.slices
        out.append({"id": index + 1, "category_id": region.category_id, "area": region.area,
                    "bbox": [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start],
                    "iscrowd": region.iscrowd})
    return out


def _png_name(image: ExportImage, used: set[str]) -> str:
    stem = Path(image.file_name).stem or "image"
    name = f"{stem}.png" if f"{stem}.png" not in used else f"{stem}-{image.image_id}.png"
    used.add(name)
    return name


def _check_json(path: Path, data: dict[str, Any]) -> None:
    """The JSON reads back (with our strict reader) as exactly what was meant."""
    try:
        same = load_json(path) == data
    except Exception as exc:
        raise ExportError(f"{path}: cannot read the written JSON back ({exc})") from exc
    if not same:
        raise ExportError(f"{path}: self-check failed: the JSON reads back differently")
