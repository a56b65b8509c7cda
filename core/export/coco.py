"""COCO instances export: one annotation per exported frontier region.

Follows the COCO data format (cocodataset.org/#format-data) as pycocotools reads it: annotation ids from 1, categories as defined (ids >= 1,
no background category), `iscrowd` 0 unless the region was imported as a crowd region, `area`
and float `bbox` [x, y, w, h] from the region's own mask, `segmentation` as compressed RLE
(counts as str; holes kept) or polygons (outer rings; lost holes and dropped parts counted), no
`ignore` field, never an empty segmentation. The file is checked by `selfcheck` before it
replaces anything.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from core.export.common import (CategoryMap, ExportItem, ExportReport, iter_images, project_items,
                                publish, single_items)
from core.export.polygons import polygons_from_rings, region_rings
from core.export.regions import ExportImage, PackedImage
from core.export.rle import compressed_rle, crop_counts, rle_json
from core.export.selfcheck import check_coco_instances
from core.jobs import CancelToken, Progress
from core.project import Category, Project
from core.tree import SegmentTree


@dataclass
class CocoOptions:
    """How regions become COCO annotations."""

    polygons: bool = False              # polygons instead of compressed RLE
    include_unlabelled: bool = False    # unlabelled regions as an extra class-agnostic category
    class_agnostic: bool = False        # every region as category 1 "object"
    merge_stuff: bool = False           # one annotation per stuff category and image
    include_suggested: bool = False     # unlabelled shown regions take their label suggestion
    polygon_tolerance: float = 1.0      # Douglas-Peucker tolerance in pixels
    min_part_area: float = 2.0          # polygon parts smaller than this (px^2) are dropped, but not a region's largest
    min_polygon_iou: float = 0.5        # self-check: a polygon annotation below this fails the export


def export_project_coco(project: Project, out: Path, options: Optional[CocoOptions] = None,
                        progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ExportReport:
    """Write the project's COCO instances JSON (image file names relative to the project folder)."""
    report = ExportReport(Path(out))
    options = options or CocoOptions()
    items = project_items(project, report, options.include_suggested)
    return write_coco(out, items, project.categories, options, report, progress, cancel)


def write_coco_instances(path: Path, trees: Iterable[tuple[str, SegmentTree]],
                         categories: Optional[Sequence[Category]] = None, class_agnostic: bool = True,
                         polygons: bool = False) -> ExportReport:
    """COCO instances for trees in memory (e.g. the `segment` CLI): image ids from 1, in order.

    With `class_agnostic` (the default) every non-ignored frontier region is one "object"
    annotation; otherwise labelled regions are exported under `categories`.
    """
    options = CocoOptions(polygons=polygons, class_agnostic=class_agnostic)
    return write_coco(path, single_items(trees), list(categories or []), options, ExportReport(Path(path)))


def write_coco(out: Path, items: Sequence[ExportItem], categories: Sequence[Category], options: CocoOptions,
               report: ExportReport, progress: Optional[Progress] = None,
               cancel: Optional[CancelToken] = None) -> ExportReport:
    """Build, write, self-check and publish a COCO instances file."""
    cmap = CategoryMap(categories, options.include_unlabelled, options.class_agnostic)
    merge = cmap.stuff_ids() if options.merge_stuff else set()
    images, annotations, index, sources = [], [], {}, []
    for image in iter_images(items, cmap, merge, report, progress, cancel, "exporting COCO"):
        sources.append(PackedImage.of(image))
        images.append({"id": image.image_id, "file_name": image.file_name,
                       "width": image.width, "height": image.height})
        for region_index, ann in _annotations(image, options, report):
            ann["id"] = len(annotations) + 1
            index[ann["id"]] = (image.image_id, region_index)
            annotations.append(ann)
    if cmap.unknown:
        report.skipped.append(f"regions with unknown category ids {sorted(cmap.unknown)} were left out")
    data = {
        "info": {"description": "Exported by CutTree", "version": "1.0",
                 "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory or c.name}
                       for c in cmap.categories],
    }
    report.images, report.annotations = len(images), len(annotations)

    def check(path: Path) -> None:
        unpacked = (packed.unpack() for packed in sources)
        iou = check_coco_instances(path, unpacked, index, options.polygons, options.min_polygon_iou)
        report.polygon_iou = iou

    publish(Path(out), json.dumps(data, separators=(",", ":")).encode("utf-8"), check)
    return report


def _annotations(image: ExportImage, options: CocoOptions, report: ExportReport) -> list[tuple[int, dict[str, Any]]]:
    out = []
    rings = region_rings(image.labels, len(image.regions)) if options.polygons else []
    for index, region in enumerate(image.regions):
        rows, cols = region.slices
        crop = image.crop(index)
        if options.polygons and not region.iscrowd:
            traced = polygons_from_rings(rings[index], options.polygon_tolerance, options.min_part_area)
            report.holes_lost += traced.holes_lost
            report.parts_dropped += traced.parts_dropped
            if not traced.rings:
                report.skipped.append(f"a {region.area}-pixel region of {image.file_name!r} left no polygon")
                continue
            segmentation: Any = traced.rings
        elif region.iscrowd:   # COCO crowd regions use uncompressed RLE
            segmentation = {"size": [image.height, image.width],
                            "counts": crop_counts(crop, rows.start, cols.start, image.height, image.width)}
        else:
            segmentation = rle_json(compressed_rle(crop, rows.start, cols.start, image.height, image.width))
        out.append((index, {
            "image_id": image.image_id, "category_id": region.category_id, "segmentation": segmentation,
            "area": float(region.area),
            "bbox": [float(cols.start), float(rows.start), float(cols.stop - cols.start), float(rows.stop - rows.start)],
            "iscrowd": region.iscrowd,
        }))
    return out
