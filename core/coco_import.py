"""Import COCO instances (polygons, compressed/uncompressed RLE, crowd) or COCO panoptic into a project.

Each image's annotations become the regions of a flat segment tree (a root over one region per
annotation, plus an unlabelled region for the pixels no annotation covers), so annotators can
continue from existing labels. Overlaps are resolved by painting larger annotations first, so
smaller objects stay visible. Every malformed entry (empty segmentation, polygons with fewer
than 3 points, coordinates outside the image, RLE of the wrong size or length, unknown
category or image, duplicate ids) is reported one by one and skipped; nothing here crashes on
bad input, and RLE strings are validated before pycocotools decodes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from core.descriptors import ImageDescriber
from core.export.selfcheck import rgb_to_id
from core.jobs import CancelToken, Progress, check_cancel, report
from core.project import Category, ImageEntry, Project, ProjectError
from core.safe_json import DataFormatError, Fields, load_json
from core.tree import SegmentTree, node_color

MAX_SIDE = 1 << 15
MAX_COCO_JSON = 2 * 1024 ** 3


@dataclass
class ImportReport:
    """How much was imported and one line per skipped entry."""

    project: Path
    images: int = 0
    annotations: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"imported {self.annotations} regions on {self.images} images into {self.project}"]
                + [f"skipped: {p}" for p in self.problems])


@dataclass
class _Piece:
    """One decoded annotation or segment waiting to be painted."""

    mask: np.ndarray
    category: int
    crowd: bool
    label: str


def import_coco(json_path: Path, images_dir: Path, project_dir: Path, png_dir: Optional[Path] = None,
                progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ImportReport:
    """Import a COCO instances or panoptic JSON (detected from its content) into a project folder.

    The project is created when `project_dir` holds none; panoptic PNGs are read from `png_dir`,
    by default the folder named like the JSON without its extension.
    """
    json_path = Path(json_path)
    name = str(json_path)
    top = Fields(load_json(json_path, max_bytes=MAX_COCO_JSON), name)
    result = ImportReport(Path(project_dir))
    categories = _categories(top, name, result)
    project = _open_or_create(Path(project_dir), categories, result)
    known = {c.id: c for c in project.categories}
    images = _images(top, name, result)
    annotations = top.list("annotations", default=[])
    panoptic = bool(annotations) and isinstance(annotations[0], dict) and "segments_info" in annotations[0]
    if panoptic:
        pieces = _panoptic_pieces(annotations, images, known, Path(png_dir or json_path.with_suffix("")), name, result)
    else:
        pieces = _instance_pieces(annotations, images, known, name, result)
    describer = ImageDescriber(project.settings)
    for n, (image_id, (file_name, width, height)) in enumerate(images.items()):
        check_cancel(cancel)
        report(progress, "importing", n / max(1, len(images)))
        entry = _add_image(project, Path(images_dir) / file_name, width, height, result)
        if entry is None:
            continue
        tree, crowd = build_tree(pieces.get(image_id, []), height, width, known, file_name, result)
        problem = describer(tree, Path(images_dir) / file_name)
        if problem is not None:
            result.problems.append(problem)
        entry.crowd = crowd
        project.save_tree(entry.id, tree)
        result.images += 1
        result.annotations += len(pieces.get(image_id, []))
    project.save()
    report(progress, "importing", 1.0)
    return result


def _open_or_create(folder: Path, categories: list[Category], result: ImportReport) -> Project:
    if not (folder / "project.json").exists():
        return Project.create(folder, categories)
    project = Project.open(folder)
    have = {c.id: c for c in project.categories}
    for category in categories:
        if category.id not in have:
            project.categories.append(category)
        elif have[category.id].name != category.name:
            result.problems.append(f"category {category.id} is {category.name!r} in the file but "
                                   f"{have[category.id].name!r} in the project; the project's name is kept")
    return project


def _categories(top: Fields, name: str, result: ImportReport) -> list[Category]:
    out: dict[int, Category] = {}
    for i, obj in enumerate(top.list("categories", default=[])):
        try:
            f = Fields(obj, f"{name} categories[{i}]")
            cat_id = f.int("id", lo=-(2 ** 31), hi=2 ** 31 - 1)
            if cat_id < 1:
                raise f.error(f"category id {cat_id}: COCO categories start at 1 (background is not a class)")
            if cat_id in out:
                raise f.error(f"category id {cat_id} is repeated")
            color = f.list("color", default=[]) if f.has("color") else []
            rgb = (tuple(color) if len(color) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in color)
                   else node_color(cat_id))
            out[cat_id] = Category(cat_id, f.str("name", max_len=256), rgb,
                                   f.bool("isthing", default=True) if f.has("isthing") else True,
                                   f.str("supercategory", default="", max_len=256) if f.has("supercategory") else "")
        except DataFormatError as exc:
            result.problems.append(str(exc))
    return list(out.values())


def _images(top: Fields, name: str, result: ImportReport) -> dict[int, tuple[str, int, int]]:
    out: dict[int, tuple[str, int, int]] = {}
    for i, obj in enumerate(top.list("images")):
        try:
            f = Fields(obj, f"{name} images[{i}]")
            image_id = f.int("id")
            if image_id in out:
                raise f.error(f"image id {image_id} is repeated")
            file_name = f.str("file_name", max_len=4096)
            if not file_name or Path(file_name).is_absolute() or ".." in Path(file_name).parts:
                raise f.error(f"file_name {file_name!r} must be a path inside the images folder")
            out[image_id] = (file_name, f.int("width", lo=1, hi=MAX_SIDE), f.int("height", lo=1, hi=MAX_SIDE))
        except DataFormatError as exc:
            result.problems.append(str(exc))
    return out


def _add_image(project: Project, path: Path, width: int, height: int, result: ImportReport) -> Optional[ImageEntry]:
    try:
        entry = project.add_image(path, width, height)
    except ProjectError as exc:
        result.problems.append(str(exc))
        return None
    if path.is_file():
        try:
            with Image.open(path) as img:
                size = img.size
            if size != (width, height):
                result.problems.append(f"{path}: the file is {size[0]}x{size[1]} but the JSON says "
                                       f"{width}x{height}; the JSON size is used")
        except (OSError, ValueError) as exc:
            result.problems.append(f"{path}: cannot read the image header ({exc})")
    else:
        result.problems.append(f"{path}: image file not found (kept in the project, shown as missing)")
    return entry


# ----------------------------------------------------------------------------- instances
def _instance_pieces(annotations: list, images: dict[int, tuple[str, int, int]], known: dict[int, Category],
                     name: str, result: ImportReport) -> dict[int, list[_Piece]]:
    pieces: dict[int, list[_Piece]] = {}
    seen: set[int] = set()
    for i, obj in enumerate(annotations):
        where = f"{name} annotations[{i}]"
        try:
            f = Fields(obj, where)
            ann_id = f.int("id")
            where = f"{name} annotation id {ann_id}"
            f = Fields(obj, where)
            if ann_id in seen:
                raise f.error("duplicate annotation id")
            seen.add(ann_id)
            image_id = f.int("image_id")
            if image_id not in images:
                raise f.error(f"image_id {image_id} is not in 'images'")
            category = f.int("category_id")
            if category not in known:
                raise f.error(f"unknown category_id {category}")
            crowd = f.int("iscrowd", lo=0, hi=1, default=0) if f.has("iscrowd") else 0
            _, width, height = images[image_id]
            mask = decode_segmentation(obj.get("segmentation"), height, width, f)
            pieces.setdefault(image_id, []).append(_Piece(mask, category, bool(crowd), f"annotation {ann_id}"))
        except DataFormatError as exc:
            result.problems.append(str(exc))
    return pieces


def decode_segmentation(seg: Any, height: int, width: int, f: Fields) -> np.ndarray:
    """A COCO segmentation (polygons or RLE) as a boolean mask; DataFormatError when malformed."""
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(_polygons(seg, height, width, f), height, width))
    elif isinstance(seg, dict):
        rle = _rle(seg, height, width, f)
    else:
        raise f.error(f"segmentation must be polygons or RLE, got {type(seg).__name__ if seg is not None else 'nothing'}")
    mask = mask_utils.decode(rle).astype(bool)
    if not mask.any():
        raise f.error("segmentation covers no pixel")
    return mask


def _polygons(seg: list, height: int, width: int, f: Fields) -> list[list[float]]:
    if not seg:
        raise f.error("empty segmentation")
    parts = []
    for k, part in enumerate(seg):
        if not isinstance(part, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in part):
            raise f.error(f"polygon {k} is not a list of numbers")
        if len(part) < 6 or len(part) % 2:
            raise f.error(f"polygon {k} has {len(part)} numbers; at least 3 points (6 numbers) in pairs are needed")
        xs, ys = np.array(part[0::2], dtype=float), np.array(part[1::2], dtype=float)
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise f.error(f"polygon {k} holds a non-finite coordinate")
        if xs.min() < 0 or ys.min() < 0 or xs.max() > width or ys.max() > height:
            raise f.error(f"polygon {k} has coordinates outside the {width}x{height} image")
        parts.append([float(v) for v in part])
    return parts


def _rle(seg: dict, height: int, width: int, f: Fields) -> dict[str, Any]:
    rf = Fields(seg, f"{f.where} segmentation")
    size = rf.list("size")
    if size != [height, width]:
        raise rf.error(f"RLE size {size!r} is not the image's [height, width] = [{height}, {width}]")
    counts = seg.get("counts")
    if isinstance(counts, str):
        total = sum(rle_string_counts(counts, rf))
        rle = {"size": [height, width], "counts": counts.encode("ascii")}
    elif isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            raise rf.error("uncompressed RLE counts must be non-negative integers")
        total = sum(counts)
        rle = None
    else:
        raise rf.error("RLE 'counts' must be a string (compressed) or a list of integers")
    if total != height * width:
        raise rf.error(f"RLE runs cover {total} pixels, the image has {height * width}")
    return rle if rle is not None else mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)


def rle_string_counts(text: str, f: Fields) -> list[int]:
    """Decode pycocotools' compressed counts string (cocoapi maskApi.c `rleFrString`), checking it."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value = shift = 0
        more = True
        while more:
            if pos >= len(text):
                raise f.error("compressed RLE counts end in the middle of a number")
            code = ord(text[pos]) - 48
            if not 0 <= code < 64:
                raise f.error(f"compressed RLE counts hold an invalid character {text[pos]!r}")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            pos += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        if value < 0:
            raise f.error("compressed RLE counts decode to a negative run")
        counts.append(value)
    return counts


# ----------------------------------------------------------------------------- panoptic
def _panoptic_pieces(annotations: list, images: dict[int, tuple[str, int, int]], known: dict[int, Category],
                     png_dir: Path, name: str, result: ImportReport) -> dict[int, list[_Piece]]:
    pieces: dict[int, list[_Piece]] = {}
    for i, obj in enumerate(annotations):
        try:
            f = Fields(obj, f"{name} annotations[{i}]")
            image_id = f.int("image_id")
            if image_id not in images or image_id in pieces:
                raise f.error(f"image_id {image_id} is unknown or annotated twice")
            _, width, height = images[image_id]
            png_name = f.str("file_name", max_len=4096)
            if Path(png_name).is_absolute() or ".." in Path(png_name).parts:
                raise f.error(f"file_name {png_name!r} must be a path inside the PNG folder")
            ids = _read_panoptic_png(png_dir / png_name, width, height, f)
            pieces[image_id] = _segments(f, ids, known, result)
        except DataFormatError as exc:
            result.problems.append(str(exc))
    return pieces


def _read_panoptic_png(path: Path, width: int, height: int, f: Fields) -> np.ndarray:
    if not path.is_file():
        raise f.error(f"panoptic PNG {path} not found")
    try:
        with Image.open(path) as img:
            if img.size != (width, height):
                raise f.error(f"panoptic PNG {path.name} is {img.size[0]}x{img.size[1]}, the image {width}x{height}")
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise f.error(f"panoptic PNG {path.name} cannot be read ({exc})") from exc
    return rgb_to_id(rgb)


def _segments(f: Fields, ids: np.ndarray, known: dict[int, Category], result: ImportReport) -> list[_Piece]:
    present = set(np.unique(ids).tolist()) - {0}
    out, seen = [], set()
    for k, obj in enumerate(f.list("segments_info")):
        try:
            s = Fields(obj, f"{f.where} segments_info[{k}]")
            seg_id = s.int("id", lo=1, hi=256 ** 3 - 1)
            if seg_id in seen:
                raise s.error(f"duplicate segment id {seg_id}")
            seen.add(seg_id)
            category = s.int("category_id")
            if category not in known:
                raise s.error(f"unknown category_id {category}")
            if seg_id not in present:
                raise s.error(f"segment {seg_id} has no pixel in the PNG")
            crowd = s.int("iscrowd", lo=0, hi=1, default=0) if s.has("iscrowd") else 0
            out.append(_Piece(ids == seg_id, category, bool(crowd), f"segment {seg_id}"))
        except DataFormatError as exc:
            result.problems.append(str(exc))
    stray = present - seen
    if stray:
        result.problems.append(f"{f.where}: PNG segments {sorted(stray)[:10]} are not in segments_info; left unlabelled")
    return out


# ----------------------------------------------------------------------------- tree
def build_tree(pieces: list[_Piece], height: int, width: int, known: dict[int, Category],
               file_name: str, result: ImportReport) -> tuple[SegmentTree, list[int]]:
    """A flat tree: one region per piece (larger painted first), the uncovered rest unlabelled."""
    labels = np.zeros((height, width), dtype=np.int32)
    order = sorted(range(len(pieces)), key=lambda i: -int(np.count_nonzero(pieces[i].mask)))
    for i in order:
        labels[pieces[i].mask] = i + 1
    present, dense = np.unique(labels, return_inverse=True)
    tree = SegmentTree.flat(dense.reshape(height, width).astype(np.int32), (height, width))
    hidden = set(range(1, len(pieces) + 1)) - set(present.tolist())
    for i in sorted(hidden):
        result.problems.append(f"{file_name!r}: {pieces[i - 1].label} is entirely covered by other annotations")
    crowd = []
    node_of = {int(v): (tree.root if len(present) == 1 else k + 1) for k, v in enumerate(present)}
    for value, node_id in node_of.items():
        node = tree.nodes[node_id]
        if value == 0:
            node.name = "unlabelled"
            continue
        piece = pieces[value - 1]
        node.category = piece.category
        node.name = known[piece.category].name
        if piece.crowd:
            crowd.append(node_id)
    return tree, crowd
