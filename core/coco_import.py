"""Import COCO instances (polygons, compressed/uncompressed RLE, crowd) or COCO panoptic into a project.

Each image's annotations become the regions of a flat segment tree (a root over one region per
annotation, plus an unlabelled region for the pixels no annotation covers), so annotators can
continue from existing labels. Overlaps are resolved by painting larger annotations first, so
smaller objects stay visible. Image, category and annotation (or panoptic segment) ids and file
names are kept in the project and written back by the exports.

Bad input never crashes the import: every malformed entry (empty segmentation, polygons with
fewer than 3 points, coordinates outside the image, RLE of the wrong size or length, unknown
category or image, duplicate ids, file names with NUL bytes or over-long parts, symlink loops,
unreadable image headers) is reported one by one and skipped. Memory stays bounded: declared
image sizes are checked before anything is allocated, and annotations are decoded one at a time
into run lists (compressed RLE strings by our own checked decoder, never by pycocotools, whose
`rleFrString` trusts its input) and painted straight into the image's label map, so no
full-size mask per annotation is ever built.

The import is all-or-nothing: annotation files are written first (a replaced image's under a
new name), `project.json` last; until then the project on disk is the old one and the new files
are unlisted. A killed import leaves the old project, and running it again gives the same
project as an uninterrupted run. When nothing at all could be imported, nothing is written.
"""
from __future__ import annotations

import errno
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from core.descriptors import ImageDescriber
from core.errors import CutTreeError
from core.export.selfcheck import rgb_to_id
from core.jobs import CancelToken, Progress, check_cancel, report
from core.project import ANNOTATION_SUFFIX, Category, Project, ProjectError
from core.safe_json import DataFormatError, Fields, load_json
from core.settings import Settings
from core.tree import SegmentTree, node_color

MAX_SIDE = 1 << 15
MAX_PIXELS = 1 << 27               # 134 M pixels: a label map stays under ~0.5 GB
MAX_COCO_JSON = 2 * 1024 ** 3
MAX_NAME_BYTES = 255               # one path component, as most file systems allow
MAX_RLE_DIGITS = 7                 # 35 bits per run: more than any image's pixel count
REPLACED_MARK = ".i"               # a replaced tree is written under `<stem>.i.cuttree.npz` (and back)


class ImportFailed(CutTreeError):
    """Nothing could be imported; the report lists why, entry by entry."""

    def __init__(self, message: str, result: "ImportReport") -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ImportReport:
    """How much was imported, what was replaced, and one line per skipped entry."""

    project: Path
    images: int = 0
    annotations: int = 0
    replaced: int = 0
    problems: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)      # per image: how many annotations were skipped

    def lines(self) -> list[str]:
        replaced = f" ({self.replaced} replaced)" if self.replaced else ""
        return ([f"imported {self.annotations} regions on {self.images} images into {self.project}{replaced}"]
                + [f"skipped: {p}" for p in self.problems] + self.partial)


@dataclass
class _Image:
    id: int
    file_name: str
    width: int
    height: int


@dataclass
class _Piece:
    """One decoded annotation: its foreground runs (column-major pixel index, length) and labels."""

    starts: np.ndarray
    lengths: np.ndarray
    category: int
    crowd: bool
    label: str
    source_id: int

    @property
    def area(self) -> int:
        return int(self.lengths.sum())


def import_coco(json_path: Path, images_dir: Path, project_dir: Path, png_dir: Optional[Path] = None,
                progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ImportReport:
    """Import a COCO instances or panoptic JSON (detected from its content) into a project folder.

    The project is created when `project_dir` holds none; an existing project gets the images
    added, or, for images it already has, their trees replaced by the imported regions. Panoptic
    PNGs are read from `png_dir`, by default the folder named like the JSON without its extension.
    """
    json_path, project_dir = Path(json_path), Path(project_dir)
    if os.path.lexists(project_dir) and not project_dir.is_dir():
        raise ProjectError(f"{project_dir}: --project names an existing file; give a folder")
    name = str(json_path)
    top = Fields(load_json(json_path, max_bytes=MAX_COCO_JSON), name)
    result = ImportReport(project_dir)
    categories = _categories(top, name, result)
    images = _images(top, name, result)
    project = _open_or_create(project_dir, categories, result)
    known = {c.id: c for c in project.categories}
    annotations = top.list("annotations", default=[])
    panoptic = bool(annotations) and isinstance(annotations[0], dict) and "segments_info" in annotations[0]
    grouped = (_group_panoptic if panoptic else _group_instances)(annotations, images, name, result)
    png_dir = Path(png_dir or json_path.with_suffix(""))
    writer = _Writer(project)
    describer = ImageDescriber(project.settings)
    try:
        for n, image in enumerate(images.values()):
            check_cancel(cancel)
            report(progress, "importing", n / max(1, len(images)))
            path = _image_path(Path(images_dir), image, result)
            if path is None:
                continue
            entries = grouped.get(image.id, [])
            if panoptic:
                labels, pieces = _panoptic_labels(entries, image, known, png_dir, result)
            else:
                pieces = _instance_pieces(entries, image, known, result)
                labels = paint(pieces, image.height, image.width)
            tree, crowd, kept = build_tree(labels, pieces, known, image.file_name, result)
            problem = describer(tree, path)          # descriptors of the imported regions, for suggestions
            if problem is not None:
                result.problems.append(problem)
            writer.save(path, image, tree, crowd, kept, result)
            result.annotations += len(kept)
        if result.images == 0:
            first = f": {result.problems[0]}" if result.problems else ""
            raise ImportFailed(f"{json_path}: nothing was imported ({len(result.problems)} entries skipped{first})",
                               result)
        project.save()
    except BaseException:
        writer.discard()
        raise
    writer.remove_replaced()
    report(progress, "importing", 1.0)
    return result


class _Writer:
    """Writes annotation files before `project.json`, so that a kill leaves only unlisted files."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.written: list[Path] = []
        self.replaced: list[Path] = []

    def save(self, path: Path, image: _Image, tree: SegmentTree, crowd: list[int], kept: dict[int, int],
             result: ImportReport) -> None:
        entry = self.project.find_image(path)
        if entry is None:
            entry = self.project.add_image(path, image.width, image.height, image_id=image.id)
        else:
            if self.project.has_tree(entry.id):
                self.replaced.append(self.project.annotation_path(entry.id))
            entry.annotation = _other_name(entry.annotation)
            entry.width, entry.height = image.width, image.height
            result.replaced += 1
        entry.crowd, entry.coco_ids, entry.coco_file_name = crowd, kept, image.file_name
        self.written.append(self.project.annotation_path(entry.id))
        self.project.save_tree(entry.id, tree)
        result.images += 1

    def discard(self) -> None:
        for path in self.written:
            _remove(path)

    def remove_replaced(self) -> None:
        for path in self.replaced:
            _remove(path)


def _other_name(annotation: str) -> str:
    """`x.cuttree.npz` <-> `x.i.cuttree.npz`: where a replaced image's new tree goes."""
    stem = annotation[:-len(ANNOTATION_SUFFIX)]
    stem = stem[:-len(REPLACED_MARK)] if stem.endswith(REPLACED_MARK) else stem + REPLACED_MARK
    return stem + ANNOTATION_SUFFIX


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _open_or_create(folder: Path, categories: list[Category], result: ImportReport) -> Project:
    """The project in memory (nothing is written until the import has succeeded)."""
    if not (folder / "project.json").exists():
        return Project(folder, categories, Settings())
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


def _images(top: Fields, name: str, result: ImportReport) -> dict[int, _Image]:
    out: dict[int, _Image] = {}
    for i, obj in enumerate(top.list("images")):
        try:
            f = Fields(obj, f"{name} images[{i}]")
            image_id = f.int("id", lo=1, hi=2 ** 53)
            if image_id in out:
                raise f.error(f"image id {image_id} is repeated")
            file_name = check_file_name(f.str("file_name", max_len=4096), f)
            width, height = f.int("width", lo=1, hi=MAX_SIDE), f.int("height", lo=1, hi=MAX_SIDE)
            if width * height > MAX_PIXELS:
                raise f.error(f"{file_name!r} declares {width}x{height} = {width * height / 1e6:.0f} M pixels, "
                              f"more than the {MAX_PIXELS / 1e6:.0f} M pixels an import takes")
            out[image_id] = _Image(image_id, file_name, width, height)
        except DataFormatError as exc:
            result.problems.append(str(exc))
    return out


def check_file_name(file_name: str, f: Fields) -> str:
    """A relative path inside the images folder, without NUL bytes or over-long parts."""
    shown = file_name if len(file_name) <= 60 else file_name[:57] + "..."
    if "\0" in file_name:
        raise f.error(f"file_name {shown!r} holds a NUL byte")
    parts = PurePosixPath(file_name.replace("\\", "/")).parts
    if not file_name or Path(file_name).is_absolute() or file_name.startswith("/") or ".." in parts:
        raise f.error(f"file_name {shown!r} must be a path inside the images folder")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        raise f.error(f"file_name {shown!r} has a part longer than {MAX_NAME_BYTES} bytes")
    return file_name


def _image_path(images_dir: Path, image: _Image, result: ImportReport) -> Optional[Path]:
    """The image file, its header checked against the JSON; None when it cannot be used at all."""
    path = images_dir / image.file_name
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            result.problems.append(f"{path}: image file not found (kept in the project, shown as missing)")
            return path
        reason = "is a symlink loop" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror or exc})"
        result.problems.append(f"{path}: {reason}; the image is skipped")
        return None
    if not os.path.isfile(path) or info.st_size == 0:
        result.problems.append(f"{path}: not a regular image file; the image is skipped")
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                size = img.size
        if size != (image.width, image.height):
            result.problems.append(f"{path}: the file is {size[0]}x{size[1]} but the JSON says "
                                   f"{image.width}x{image.height}; the JSON size is used")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        result.problems.append(f"{path}: cannot read the image header ({reason}); the JSON size is used")
    return path


# ----------------------------------------------------------------------------- instances
def _group_instances(annotations: list, images: dict[int, _Image], name: str,
                     result: ImportReport) -> dict[int, list[tuple[str, dict]]]:
    """Annotations by image, with the ids checked; segmentations are decoded later, per image."""
    grouped: dict[int, list[tuple[str, dict]]] = {}
    seen: set[int] = set()
    for i, obj in enumerate(annotations):
        try:
            f = Fields(obj, f"{name} annotations[{i}]")
            ann_id = f.int("id", lo=0, hi=2 ** 53)
            where = f"{name} annotation id {ann_id}"
            f = Fields(obj, where)
            if ann_id in seen:
                raise f.error("duplicate annotation id")
            seen.add(ann_id)
            image_id = f.int("image_id")
            if image_id not in images:
                raise f.error(f"image_id {image_id} is not in 'images'")
            grouped.setdefault(image_id, []).append((where, obj))
        except DataFormatError as exc:
            result.problems.append(str(exc))
    return grouped


def _instance_pieces(entries: list[tuple[str, dict]], image: _Image, known: dict[int, Category],
                     result: ImportReport) -> list[_Piece]:
    pieces = []
    for where, obj in entries:
        try:
            f = Fields(obj, where)
            category = f.int("category_id")
            if category not in known:
                raise f.error(f"unknown category_id {category}")
            crowd = f.int("iscrowd", lo=0, hi=1, default=0) if f.has("iscrowd") else 0
            starts, lengths = segmentation_runs(obj.get("segmentation"), image.height, image.width, f)
            pieces.append(_Piece(starts, lengths, category, bool(crowd), f"annotation {obj['id']}", int(obj["id"])))
        except DataFormatError as exc:
            result.problems.append(str(exc))
    if len(pieces) < len(entries):
        result.partial.append(f"{image.file_name}: {len(entries) - len(pieces)} of {len(entries)} annotations skipped")
    return pieces


def segmentation_runs(seg: Any, height: int, width: int, f: Fields) -> tuple[np.ndarray, np.ndarray]:
    """A COCO segmentation as foreground runs (column-major start, length); DataFormatError when malformed."""
    if isinstance(seg, list):
        try:
            rle = mask_utils.merge(mask_utils.frPyObjects(_polygons(seg, height, width, f), height, width))
        except (ValueError, TypeError, OverflowError) as exc:
            raise f.error(f"pycocotools cannot rasterise the polygons ({exc})") from exc
        counts = rle_string_counts(rle["counts"].decode("ascii"), f)
    elif isinstance(seg, dict):
        counts = _rle_counts(seg, height, width, f)
    else:
        raise f.error(f"segmentation must be polygons or RLE, got {type(seg).__name__ if seg is not None else 'nothing'}")
    total = int(counts.sum())
    if total != height * width:
        raise f.error(f"RLE runs cover {total} pixels, the image has {height * width}")
    ends = np.cumsum(counts)
    starts, lengths = (ends - counts)[1::2], counts[1::2]
    keep = lengths > 0
    if not keep.any():
        raise f.error("segmentation covers no pixel")
    return starts[keep], lengths[keep]


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


def _rle_counts(seg: dict, height: int, width: int, f: Fields) -> np.ndarray:
    rf = Fields(seg, f"{f.where} segmentation")
    size = rf.list("size")
    if size != [height, width]:
        raise rf.error(f"RLE size {size!r} is not the image's [height, width] = [{height}, {width}]")
    counts = seg.get("counts")
    if isinstance(counts, str):
        return rle_string_counts(counts, rf)
    if isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= height * width for v in counts):
            raise rf.error("uncompressed RLE counts must be non-negative integers no larger than the image")
        return np.array(counts, dtype=np.int64)
    raise rf.error("RLE 'counts' must be a string (compressed) or a list of integers")


def rle_string_counts(text: str, f: Fields) -> np.ndarray:
    """Decode pycocotools' compressed counts string (cocoapi maskApi.c `rleFrString`), checking it.

    Each number is little-endian 5-bit groups in characters 48..111, bit 0x20 meaning "more
    follows" and bit 0x10 of the last group the sign; from the fourth number on, each is stored
    as the difference to the number two places before. Vectorised, so long strings stay cheap.
    """
    codes = np.frombuffer(text.encode("latin-1", "replace"), dtype=np.uint8).astype(np.int64) - 48
    if len(codes) == 0:
        raise f.error("compressed RLE counts are empty")
    if codes.min() < 0 or codes.max() >= 64:
        bad = text[int(np.flatnonzero((codes < 0) | (codes >= 64))[0])]
        raise f.error(f"compressed RLE counts hold an invalid character {bad!r}")
    last = (codes & 0x20) == 0
    if not last[-1]:
        raise f.error("compressed RLE counts end in the middle of a number")
    number = np.concatenate([[0], np.cumsum(last)[:-1]])             # which number each character belongs to
    first = np.concatenate([[0], np.flatnonzero(last)[:-1] + 1])
    digit = np.arange(len(codes)) - first[number]
    if digit.max() >= MAX_RLE_DIGITS:
        raise f.error("compressed RLE counts hold a number too large for any image")
    values = np.zeros(len(first), dtype=np.int64)
    np.add.at(values, number, (codes & 0x1F) << (5 * digit))
    negative = (codes[last] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (digit[last][negative] + 1))
    values[1::2] = np.cumsum(values[1::2])     # x[i] += x[i - 2] from i = 3: running sums over
    values[2::2] = np.cumsum(values[2::2])     # every other number, from x[1] and from x[2]
    if (values < 0).any():
        raise f.error("compressed RLE counts decode to a negative run")
    return values


def paint(pieces: list[_Piece], height: int, width: int) -> np.ndarray:
    """Label map (0 = none, k = pieces[k - 1]) with larger pieces painted first, so small ones stay on top."""
    flat = np.zeros(height * width, dtype=np.int32)                  # column-major, as COCO RLE runs
    for i in sorted(range(len(pieces)), key=lambda i: -pieces[i].area):
        _paint_runs(flat, pieces[i].starts, pieces[i].lengths, i + 1)
    return np.ascontiguousarray(flat.reshape(width, height).T)


def _paint_runs(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, value: int) -> None:
    long = lengths >= 64
    for start, length in zip(starts[long].tolist(), lengths[long].tolist()):
        flat[start:start + length] = value
    short_starts, short_lengths = starts[~long], lengths[~long]
    if len(short_starts):
        offsets = np.repeat(short_starts - (np.cumsum(short_lengths) - short_lengths), short_lengths)
        flat[offsets + np.arange(len(offsets))] = value


# ----------------------------------------------------------------------------- panoptic
def _group_panoptic(annotations: list, images: dict[int, _Image], name: str,
                    result: ImportReport) -> dict[int, list[tuple[str, dict]]]:
    grouped: dict[int, list[tuple[str, dict]]] = {}
    for i, obj in enumerate(annotations):
        try:
            f = Fields(obj, f"{name} annotations[{i}]")
            image_id = f.int("image_id")
            if image_id not in images or image_id in grouped:
                raise f.error(f"image_id {image_id} is unknown or annotated twice")
            png_name = f.str("file_name", max_len=4096)
            parts = PurePosixPath(png_name.replace("\\", "/")).parts
            if "\0" in png_name or Path(png_name).is_absolute() or ".." in parts or not parts:
                raise f.error(f"file_name {png_name[:60]!r} must be a path inside the PNG folder")
            grouped[image_id] = [(f.where, obj)]
        except DataFormatError as exc:
            result.problems.append(str(exc))
    return grouped


def _panoptic_labels(entries: list[tuple[str, dict]], image: _Image, known: dict[int, Category],
                     png_dir: Path, result: ImportReport) -> tuple[np.ndarray, list[_Piece]]:
    """The label map of an image's panoptic PNG (0 = void or unlisted) and one piece per listed segment."""
    empty = np.zeros((image.height, image.width), dtype=np.int32)
    if not entries:
        return empty, []
    where, obj = entries[0]
    f = Fields(obj, where)
    try:
        ids = _read_panoptic_png(png_dir / obj["file_name"], image, f)
    except DataFormatError as exc:
        result.problems.append(str(exc))
        return empty, []
    values, inverse = np.unique(ids, return_inverse=True)
    present = set(values.tolist()) - {0}
    pieces, piece_of = [], np.zeros(len(values), dtype=np.int32)
    seen: set[int] = set()
    for k, seg in enumerate(f.list("segments_info", default=[])):
        try:
            s = Fields(seg, f"{where} segments_info[{k}]")
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
            index = int(np.searchsorted(values, seg_id))
            pieces.append(_Piece(np.zeros(0, np.int64), np.zeros(0, np.int64), category, bool(crowd),
                                 f"segment {seg_id}", seg_id))
            piece_of[index] = len(pieces)
        except DataFormatError as exc:
            result.problems.append(str(exc))
    stray = present - seen
    if stray:
        result.problems.append(f"{where}: PNG segments {sorted(stray)[:10]} are not in segments_info; left unlabelled")
    return piece_of[inverse.reshape(ids.shape)], pieces


def _read_panoptic_png(path: Path, image: _Image, f: Fields) -> np.ndarray:
    if not path.is_file():
        raise f.error(f"panoptic PNG {path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.size != (image.width, image.height):
                    raise f.error(f"panoptic PNG {path.name} is {img.size[0]}x{img.size[1]}, "
                                  f"the image {image.width}x{image.height}")
                rgb = np.asarray(img.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise f.error(f"panoptic PNG {path.name} cannot be read ({exc})") from exc
    return rgb_to_id(rgb)


# ----------------------------------------------------------------------------- tree
def build_tree(labels: np.ndarray, pieces: list[_Piece], known: dict[int, Category], file_name: str,
               result: ImportReport) -> tuple[SegmentTree, list[int], dict[int, int]]:
    """A flat tree over a label map (0 = unlabelled); its crowd nodes and node -> imported id."""
    height, width = labels.shape
    counts = np.bincount(labels.ravel(), minlength=len(pieces) + 1)
    present = np.flatnonzero(counts)
    dense = np.zeros(len(counts), dtype=np.int32)
    dense[present] = np.arange(len(present), dtype=np.int32)
    tree = SegmentTree.flat(dense[labels], (height, width))
    for value in sorted(set(range(1, len(pieces) + 1)) - set(present.tolist())):
        result.problems.append(f"{file_name!r}: {pieces[value - 1].label} is entirely covered by other annotations")
    crowd, kept = [], {}
    for k, value in enumerate(present.tolist()):
        node_id = tree.root if len(present) == 1 else k + 1
        node = tree.nodes[node_id]
        if value == 0:
            node.name = "unlabelled"
            continue
        piece = pieces[value - 1]
        node.category = piece.category
        node.name = known[piece.category].name
        kept[node_id] = piece.source_id
        if piece.crowd:
            crowd.append(node_id)
    return tree, crowd, kept
