"""Semantic segmentation export: a folder of single-channel class-index PNGs, a categories file, previews.

Pixel value = class index (0..K-1, the project's categories in id order), 255 = unlabelled or
ignored (the common ignore index, e.g. mmsegmentation's and detectron2's default). The PNGs are 8-bit
greyscale ("L"), so every reader gets the indices: detectron2's `DatasetMapper` reads them with
PIL mode "L", which turns palette images into grey levels of their colours. They are named like
the image's `file_name` with `.png` (sub-folders kept), as detectron2's `load_sem_seg` pairs
images and labels by relative path. `categories.json` maps index -> COCO id, name and colour;
`previews/` holds the same maps coloured, for people. The folder is written staged and swapped in
whole; each PNG is read back and compared after writing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from core.atomic_io import atomic_write_json, atomic_write_png
from core.export import ExportError
from core.export.common import CategoryMap, ExportReport, ExportSource, iter_images, project_source
from core.export.image_paths import ImagePaths, assign_file_names, label_name, place_images
from core.export.output import FileSet
from core.export.selfcheck import check_semantic_png
from core.jobs import CancelToken, Progress
from core.project import Category, Project

IGNORE = 255
CATEGORIES_FILE = "categories.json"
PREVIEWS = "previews"
IMAGES = "images"


def export_project_semantic(project: Project, out_dir: Path, progress: Optional[Progress] = None,
                            cancel: Optional[CancelToken] = None, paths: Optional[ImagePaths] = None) -> ExportReport:
    """Write `<out_dir>/<file name>.png` for each annotated image, the categories file and previews."""
    return write_semantic(out_dir, project_source(project), paths or ImagePaths(), progress, cancel)


def write_semantic(out_dir: Path, source: ExportSource, paths: Optional[ImagePaths] = None,
                   progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ExportReport:
    out_dir, paths = Path(out_dir), paths or ImagePaths()
    report = ExportReport(out_dir, skipped=list(source.skipped))
    assign_file_names(source.items, paths)
    cmap = CategoryMap(source.categories)
    if len(cmap.categories) >= IGNORE:
        raise ExportError(f"{len(cmap.categories)} categories do not fit an 8-bit semantic PNG (at most 254)")
    index_of = np.full(max((c.id for c in cmap.categories), default=0) + 1, IGNORE, dtype=np.uint8)
    for index, category in enumerate(cmap.categories):
        index_of[category.id] = index
    palette = _palette(cmap.categories)
    used: set[str] = set()
    exported = set()
    with FileSet(out_dir, "semantic") as files:
        for item, image in iter_images(source.items, cmap, set(), report, progress, cancel, "exporting semantic"):
            region_class = np.array([index_of[r.category_id] for r in image.regions] + [IGNORE], dtype=np.uint8)
            classes = region_class[image.labels]          # label -1 picks the trailing IGNORE
            name = label_name(image.file_name, image.image_id, used)
            atomic_write_png(files.path(name), Image.fromarray(classes, mode="L"), compress_level=1)
            check_semantic_png(files.path(name), classes)
            preview = Image.frombytes("P", (image.width, image.height), classes.tobytes())
            preview.putpalette(palette)
            atomic_write_png(files.path(f"{PREVIEWS}/{name}"), preview, compress_level=1)
            exported.add(item.image_id)
            report.images += 1
            report.annotations += len(image.regions)
        atomic_write_json(files.path(CATEGORIES_FILE), {
            "ignore_index": IGNORE,
            "classes": [{"index": i, "id": c.id, "name": c.name, "color": list(c.color), "isthing": c.isthing}
                        for i, c in enumerate(cmap.categories)],
        }, indent=1)
        if paths.images != "none":
            place_images([i for i in source.items if i.image_id in exported], files, IMAGES, paths.images)
        files.commit()
    return report


def _palette(categories: Sequence[Category]) -> list[int]:
    colors = [(0, 0, 0)] * 256
    for index, category in enumerate(categories):
        colors[index] = tuple(category.color)
    colors[IGNORE] = (255, 255, 255)
    return [v for color in colors for v in color]
