"""Semantic segmentation export: a single-channel PNG per image plus a colour map JSON.

Pixel value = class index (0..K-1, the project's categories in id order), 255 = unlabelled or
ignored (the common ignore index, e.g. mmsegmentation's and detectron2's default). PNGs are palette images,
so they look coloured in a viewer while holding plain indices; `colormap.json` lists index, COCO
category id, name and colour. Each PNG is read back and compared after writing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from core.atomic_io import atomic_write_json, atomic_write_png
from core.export import ExportError
from core.export.common import CategoryMap, ExportItem, ExportReport, iter_images, project_items
from core.export.selfcheck import check_semantic_png
from core.jobs import CancelToken, Progress
from core.project import Category, Project

IGNORE = 255
COLORMAP_FILE = "colormap.json"


def export_project_semantic(project: Project, out_dir: Path, progress: Optional[Progress] = None,
                            cancel: Optional[CancelToken] = None, include_suggested: bool = False) -> ExportReport:
    """Write `<out_dir>/<image stem>.png` for each annotated image and `<out_dir>/colormap.json`."""
    report = ExportReport(Path(out_dir))
    return write_semantic(out_dir, project_items(project, report, include_suggested), project.categories,
                          report, progress, cancel)


def write_semantic(out_dir: Path, items: Sequence[ExportItem], categories: Sequence[Category],
                   report: ExportReport, progress: Optional[Progress] = None,
                   cancel: Optional[CancelToken] = None) -> ExportReport:
    out_dir = Path(out_dir)
    cmap = CategoryMap(categories)
    if len(cmap.categories) >= IGNORE:
        raise ExportError(f"{len(cmap.categories)} categories do not fit an 8-bit semantic PNG (at most 254)")
    index_of = np.full(max((c.id for c in cmap.categories), default=0) + 1, IGNORE, dtype=np.uint8)
    for index, category in enumerate(cmap.categories):
        index_of[category.id] = index
    palette = _palette(cmap.categories)
    used: set[str] = set()
    for image in iter_images(items, cmap, set(), report, progress, cancel, "exporting semantic"):
        region_class = np.array([index_of[r.category_id] for r in image.regions] + [IGNORE], dtype=np.uint8)
        classes = region_class[image.labels]          # label -1 picks the trailing IGNORE
        stem = Path(image.file_name).stem or "image"
        name = f"{stem}.png" if f"{stem}.png" not in used else f"{stem}-{image.image_id}.png"
        used.add(name)
        png = Image.frombytes("P", (image.width, image.height), classes.tobytes())
        png.putpalette(palette)
        atomic_write_png(out_dir / name, png, compress_level=1)
        check_semantic_png(out_dir / name, classes)
        report.images += 1
        report.annotations += len(image.regions)
    atomic_write_json(out_dir / COLORMAP_FILE, {
        "ignore_index": IGNORE,
        "classes": [{"index": i, "id": c.id, "name": c.name, "color": list(c.color), "isthing": c.isthing}
                    for i, c in enumerate(cmap.categories)],
    }, indent=1)
    return report


def _palette(categories: Sequence[Category]) -> list[int]:
    colors = [(0, 0, 0)] * 256
    for index, category in enumerate(categories):
        colors[index] = tuple(category.color)
    colors[IGNORE] = (255, 255, 255)
    return [v for color in colors for v in color]
