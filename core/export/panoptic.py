"""COCO panoptic export: one RGB PNG per image (id = R + 256 G + 256^2 B, 0 = void) and a JSON.

Layout as in cocodataset/panopticapi: `<out>.json` with `annotations[].segments_info` and
categories carrying `isthing` and `color`, the PNGs in the folder `<out stem>/` next to it, named
like the image's `file_name` with `.png` (sub-folders kept). Stuff categories are merged into one
segment per image (as COCO panoptic does); unlabelled and ignored regions are void. Segment ids
kept from an import are written back. Each PNG is read back and compared right after it is
written. The PNGs are written into a staging folder that is swapped in whole, and the JSON is
published right after it, so a kill never leaves a JSON beside PNGs of another export (the
remaining gap is two renames: the PNG folder, then the JSON). detectron2's
`load_coco_panoptic_json` ignores `file_name` and looks for `<png stem>.jpg` in the image folder.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from core.atomic_io import atomic_write_png, fsync_folder
from core.export import ExportError
from core.export.common import (AnnotationIds, CategoryMap, ExportReport, ExportSource, iter_images, project_source,
                                publish)
from core.export.image_paths import ImagePaths, assign_file_names, label_name, place_images
from core.export.output import FileSet
from core.export.regions import ExportImage
from core.export.selfcheck import check_panoptic_png, id_to_rgb
from core.jobs import CancelToken, Progress
from core.project import Project
from core.safe_json import load_json

MAX_SEGMENTS = 256 ** 3 - 1
DATASET_JSON = "annotations/panoptic_default.json"
IMAGES = "images"


def export_project_panoptic(project: Project, out: Path, merge_stuff: bool = True,
                            progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None,
                            paths: Optional[ImagePaths] = None) -> ExportReport:
    """Write `<out>` (JSON) and `<out stem>/` (PNGs) for every annotated image of the project."""
    return write_panoptic(out, project_source(project), merge_stuff, paths or ImagePaths(), progress, cancel)


def write_panoptic(out: Path, source: ExportSource, merge_stuff: bool = True, paths: Optional[ImagePaths] = None,
                   progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ExportReport:
    """The panoptic JSON + PNG folder at `out` (or, with copied images, a dataset folder `out`)."""
    out, paths = Path(out), paths or ImagePaths()
    report = ExportReport(out, skipped=list(source.skipped))
    assign_file_names(source.items, paths)
    if paths.images != "none":
        with FileSet(out, "COCO panoptic") as files:
            json_path = files.path(DATASET_JSON)
            exported = _write(json_path, json_path.with_suffix(""), source, merge_stuff, report, progress, cancel)
            place_images([i for i in source.items if i.image_id in exported], files, IMAGES, paths.images)
            files.commit()
        return report
    png_dir = out.with_suffix("")
    if png_dir == out:
        raise ExportError(f"{out}: the panoptic JSON needs a file extension (e.g. panoptic.json)")
    with FileSet(png_dir, "COCO panoptic PNG") as pngs:
        _write(out, pngs.root, source, merge_stuff, report, progress, cancel, publish_json=False)
        pngs.commit()
    os.replace(out.with_name(out.name + ".unverified"), out)
    fsync_folder(out.parent)
    return report


def _write(json_path: Path, png_dir: Path, source: ExportSource, merge_stuff: bool, report: ExportReport,
           progress: Optional[Progress], cancel: Optional[CancelToken], publish_json: bool = True) -> set[int]:
    """PNGs into `png_dir`, then the checked JSON (left as `.unverified` unless `publish_json`)."""
    cmap = CategoryMap(source.categories)
    merge = cmap.stuff_ids() if merge_stuff else set()
    ids = AnnotationIds(source.items, per_image=True)
    images, annotations, used = [], [], set()
    for item, image in iter_images(source.items, cmap, merge, report, progress, cancel, "exporting panoptic"):
        ids.start_image(item.kept_ids)
        png_name = label_name(image.file_name, image.image_id, used)
        segment_ids = [ids.take(r.node_ids, item.kept_ids, MAX_SEGMENTS) for r in image.regions]
        segments = _segments(image, segment_ids)
        png_path = png_dir / png_name
        png_path.parent.mkdir(parents=True, exist_ok=True)
        lut = np.array([0] + segment_ids, dtype=np.int64)
        atomic_write_png(png_path, id_to_rgb(lut[image.labels + 1]), compress_level=1)
        check_panoptic_png(png_path, image, segments, lut)
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
    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    publish(json_path, raw, lambda p: _check_json(p, data), move=publish_json)
    return {image["id"] for image in images}


def _segments(image: ExportImage, segment_ids: Sequence[int]) -> list[dict[str, Any]]:
    if len(image.regions) > MAX_SEGMENTS:
        raise ExportError(f"{image.file_name!r}: {len(image.regions)} segments do not fit a panoptic PNG")
    out = []
    for segment_id, region in zip(segment_ids, image.regions):
        rows, cols = region.slices
        out.append({"id": segment_id, "category_id": region.category_id, "area": region.area,
                    "bbox": [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start],
                    "iscrowd": region.iscrowd})
    return out


def _check_json(path: Path, data: dict[str, Any]) -> None:
    """The JSON reads back (with our strict reader) as exactly what was meant."""
    try:
        same = load_json(path) == data
    except Exception as exc:
        raise ExportError(f"{path}: cannot read the written JSON back ({exc})") from exc
    if not same:
        raise ExportError(f"{path}: self-check failed: the JSON reads back differently")
