"""COCO instances export: one annotation per exported frontier region.

Follows the COCO data format (cocodataset.org/#format-data) as pycocotools reads it: categories
as defined (ids >= 1, no background category), `iscrowd` 0 unless the region was imported as a crowd region, `segmentation` as
compressed RLE (counts as str; holes kept) or polygons (outer rings; lost holes and dropped parts
counted), no `ignore` field, never an empty segmentation. RLE annotations take `area` and float
`bbox` from the region's mask; polygon annotations from the polygon written, as pycocotools'
`frPyObjects` + `area`/`toBbox` compute them, so a consumer's box matches the mask it decodes.
Image, category and annotation ids kept from an import are written back; new regions get ids
above them. The file is checked by `selfcheck` before it replaces anything.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from pycocotools import mask as mask_utils

from core.export.common import (AnnotationIds, CategoryMap, ExportReport, ExportSource, iter_images,
                                project_source, publish, region_polygons, single_items)
from core.export.image_paths import ImagePaths, assign_file_names, place_images
from core.export.output import FileSet
from core.export.polygons import region_rings
from core.export.regions import ExportImage, PackedImage
from core.export.rle import region_counts, region_rle, rle_json
from core.export.selfcheck import check_coco_instances
from core.jobs import CancelToken, Progress
from core.project import Category, Project
from core.tree import SegmentTree

#: a self-contained COCO dataset folder (the layout Datumaro expects; any path works for the others)
DATASET_JSON = "annotations/instances_default.json"
IMAGES = "images"


@dataclass
class CocoOptions:
    """How regions become COCO annotations."""

    polygons: bool = False              # polygons instead of compressed RLE
    include_unlabelled: bool = False    # unlabelled regions as an extra class-agnostic category
    class_agnostic: bool = False        # every region as category 1 "object"
    merge_stuff: bool = False           # one annotation per stuff category and image
    polygon_tolerance: float = 1.0      # Douglas-Peucker tolerance in pixels
    min_part_area: float = 2.0          # polygon parts smaller than this (px^2) are dropped, but not a region's largest
    min_polygon_iou: float = 0.5        # self-check: a polygon annotation below this fails the export


def export_project_coco(project: Project, out: Path, options: Optional[CocoOptions] = None,
                        progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None,
                        paths: Optional[ImagePaths] = None) -> ExportReport:
    """Write the project's COCO instances JSON (or, with copied images, a dataset folder)."""
    return write_coco(out, project_source(project), options or CocoOptions(), paths or ImagePaths(),
                      progress, cancel)


def write_coco_instances(path: Path, trees: Iterable[tuple[str, SegmentTree]],
                         categories: Optional[Sequence[Category]] = None, class_agnostic: bool = True,
                         polygons: bool = False, image_paths: Sequence[Optional[Path]] = ()) -> ExportReport:
    """COCO instances for trees in memory (e.g. the `segment` CLI): image ids from 1, in order.

    With `class_agnostic` (the default) every non-ignored frontier region is one "object"
    annotation; otherwise labelled regions are exported under `categories`.
    """
    options = CocoOptions(polygons=polygons, class_agnostic=class_agnostic)
    source = ExportSource(single_items(trees, image_paths), list(categories or []))
    return write_coco(path, source, options, ImagePaths())


def write_coco(out: Path, source: ExportSource, options: CocoOptions, paths: ImagePaths,
               progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ExportReport:
    """Build, write, self-check and publish a COCO instances file (or dataset folder)."""
    out = Path(out)
    report = ExportReport(out, skipped=list(source.skipped))
    assign_file_names(source.items, paths)
    cmap = CategoryMap(source.categories, options.include_unlabelled, options.class_agnostic)
    merge = cmap.stuff_ids() if options.merge_stuff else set()
    ids = AnnotationIds(source.items)
    images, annotations, index, sources = [], [], {}, []
    for item, image in iter_images(source.items, cmap, merge, report, progress, cancel, "exporting COCO"):
        sources.append(PackedImage.of(image))
        images.append({"id": image.image_id, "file_name": image.file_name,
                       "width": image.width, "height": image.height})
        for region_index, ann in _annotations(image, options, report):
            ann["id"] = ids.take(image.regions[region_index].node_ids, item.kept_ids)
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
        report.polygon_iou = check_coco_instances(path, unpacked, index, options.polygons, options.min_polygon_iou)

    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    if paths.images == "none":
        publish(out, raw, check)
        return report
    exported = {image["id"] for image in images}
    with FileSet(out, "COCO instances") as files:
        place_images([i for i in source.items if i.image_id in exported], files, IMAGES, paths.images)
        publish(files.path(DATASET_JSON), raw, check)
        files.commit()
    return report


def _annotations(image: ExportImage, options: CocoOptions, report: ExportReport) -> list[tuple[int, dict[str, Any]]]:
    out = []
    rings = region_rings(image.labels, len(image.regions)) if options.polygons else []
    for index, region in enumerate(image.regions):
        rows, cols = region.slices
        area, bbox = float(region.area), [float(cols.start), float(rows.start),
                                          float(cols.stop - cols.start), float(rows.stop - rows.start)]
        if options.polygons and not region.iscrowd:
            polygons = region_polygons(image, index, rings[index], options.polygon_tolerance,
                                       options.min_part_area, report)
            if polygons is None:
                continue
            segmentation: Any = polygons
            area, bbox = polygon_area_bbox(polygons, image.height, image.width)
        elif region.iscrowd:   # COCO crowd regions use uncompressed RLE
            segmentation = {"size": [image.height, image.width], "counts": region_counts(image, index).tolist()}
        else:
            segmentation = rle_json(region_rle(image, index))
        out.append((index, {"image_id": image.image_id, "category_id": region.category_id,
                            "segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": region.iscrowd}))
    return out


def polygon_area_bbox(rings: list[list[float]], height: int, width: int) -> tuple[float, list[float]]:
    """Area and bbox of polygons as pycocotools computes them (`frPyObjects`, merged, `area`/`toBbox`)."""
    merged = mask_utils.merge(mask_utils.frPyObjects(rings, height, width))
    return float(mask_utils.area(merged)), [float(v) for v in mask_utils.toBbox(merged)]
