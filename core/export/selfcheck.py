"""Reading an export back and comparing it with the masks it came from.

COCO instances are loaded with `pycocotools.coco.COCO` and every annotation parsed with
`annToRLE` (pycocotools parses the RLE string or rasterises the polygons) and compared with the
source region's mask in run-length form, which is exact and avoids materialising 20 000 full
masks: RLE must equal the source (|file| = |source| = |file AND source|) with `area`/`bbox`
equal to the region's, measured on the working map independently of the encoder; per image
the largest region's RLE is also decoded to pixels by pycocotools and compared with the
full-size mask (one decode, ~1 s at 108 Mpx, instead of one per region); polygons are compared by IoU (reported; below a floor the export fails). Panoptic and semantic PNGs are
decoded and must equal the source label maps. Any mismatch raises `ExportError`.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from core.export import ExportError
from core.export.regions import ExportImage, upsample_blocks
from core.export.rle import region_rle

MAX_LISTED = 5


def check_coco_instances(path: Path, sources: Iterable[ExportImage], index: dict[int, tuple[int, int]],
                         polygons: bool, min_iou: float = 0.5) -> Optional[tuple[float, float]]:
    """Compare every annotation of `path` with its source region; (min, mean) polygon IoU."""
    coco = load_coco(path)
    errors = _structure_errors(coco, index)
    by_image: dict[int, list[int]] = {}
    for ann_id, (image_id, _) in index.items():
        by_image.setdefault(image_id, []).append(ann_id)
    ious: list[float] = []
    for source in sources:
        img = coco.imgs.get(source.image_id)
        if img is None or (img["height"], img["width"]) != (source.height, source.width):
            errors.append(f"image {source.file_name!r}: missing or wrong size in the file")
            continue
        anns = by_image.get(source.image_id, [])
        decoded = max(anns, key=lambda a: source.regions[index[a][1]].area, default=None)
        for ann_id in anns:
            ann = coco.anns[ann_id]
            errors.extend(_annotation_errors(coco, ann, source, index[ann_id][1], polygons, ious, min_iou,
                                             decode=ann_id == decoded))
        if len(errors) > MAX_LISTED:
            break
    if errors:
        raise ExportError(f"{path}: self-check failed: " + "; ".join(errors[:MAX_LISTED]))
    return (min(ious), float(np.mean(ious))) if ious else None


def load_coco(path: Path) -> COCO:
    """pycocotools' COCO on a file, its progress prints silenced; errors become ExportError."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except Exception as exc:  # pycocotools raises assorted types on a bad file
        raise ExportError(f"{path}: pycocotools cannot load the file ({exc})") from exc


def _structure_errors(coco: COCO, index: dict[int, tuple[int, int]]) -> list[str]:
    errors = []
    anns = coco.dataset.get("annotations", [])
    ids = [a.get("id") for a in anns]
    if len(set(ids)) != len(ids) or any(not isinstance(i, int) or i < 1 for i in ids):
        errors.append("annotation ids are not unique positive integers")
    if set(ids) != set(index) or len(coco.dataset.get("images", [])) != len(coco.imgs):
        errors.append("the annotations differ from the exported regions")
    cat_ids = [c["id"] for c in coco.dataset.get("categories", [])]
    if any(c < 1 for c in cat_ids) or len(set(cat_ids)) != len(cat_ids):
        errors.append("category ids are not unique integers from 1")
    for ann in anns:
        if "ignore" in ann or ann.get("iscrowd") not in (0, 1) or ann.get("category_id") not in coco.cats:
            errors.append(f"annotation {ann.get('id')}: 'ignore' field, bad iscrowd or unknown category")
        if not ann.get("segmentation"):
            errors.append(f"annotation {ann.get('id')}: empty segmentation")
    return errors


def _annotation_errors(coco: COCO, ann: dict, source: ExportImage, region_index: int, polygons: bool,
                       ious: list[float], min_iou: float, decode: bool = False) -> list[str]:
    region = source.regions[region_index]
    name = f"annotation {ann['id']} ({source.file_name!r})"
    if ann["category_id"] != region.category_id:
        return [f"{name}: category {ann['category_id']} instead of {region.category_id}"]
    rows, cols = region.slices
    written = coco.annToRLE(ann)
    written_box = mask_utils.toBbox(written).tolist()
    reference = region_rle(source, region_index)
    if polygons and isinstance(ann["segmentation"], list):
        if ann["area"] != float(mask_utils.area(written)) or list(ann["bbox"]) != written_box:
            return [f"{name}: area/bbox {ann['area']}, {ann['bbox']} are not the written polygon's"]
        iou = float(mask_utils.iou([written], [reference], [0])[0][0])
        ious.append(iou)
        return [f"{name}: polygon IoU {iou:.3f} is below {min_iou}"] if iou < min_iou else []
    if ann["area"] != region.area:
        return [f"{name}: area {ann['area']} but the region has {region.area} pixels"]
    common = int(mask_utils.area(mask_utils.merge([written, reference], intersect=True)))
    if not int(mask_utils.area(written)) == common == region.area:
        return [f"{name}: decoded mask differs from the source region"]
    expected = [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start]
    if list(ann["bbox"]) != expected or written_box != expected:
        return [f"{name}: bbox {ann['bbox']} does not match the mask's {expected}"]
    if decode and not _decodes_to(written, source, region_index):
        return [f"{name}: pycocotools decodes pixels that differ from the source region"]
    return []


def _decodes_to(rle: dict, image: ExportImage, region_index: int) -> bool:
    """Whether pycocotools decodes `rle` to exactly the region's full-size mask, compared
    transposed because pycocotools decodes in column-major order."""
    rows, cols = image.regions[region_index].slices
    small_rows, small_cols = image.regions[region_index].small_slices
    crop_t = upsample_blocks((image.small[small_rows, small_cols] == region_index).T,
                             image.col_starts[small_cols.start:small_cols.stop + 1],
                             image.row_starts[small_rows.start:small_rows.stop + 1])
    decoded_t = mask_utils.decode(rle).T
    return bool(np.array_equal(decoded_t[cols, rows], crop_t)
                and int(np.count_nonzero(crop_t)) == int(mask_utils.area(rle)))


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic segment ids: R + 256 G + 256^2 B (cocodataset/panopticapi `rgb2id`)."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)).astype(np.int64)


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_id` as an (H, W, 3) uint8 image."""
    little = np.ascontiguousarray(ids, dtype="<u4")
    return np.ascontiguousarray(little.view(np.uint8).reshape(*ids.shape, 4)[..., :3])


def read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: cannot read the PNG back ({exc})") from exc


def check_panoptic_png(path: Path, source: ExportImage, segments: list[dict], lut: np.ndarray) -> None:
    """The PNG decodes to the source's segment ids (`lut[region index + 1]`, 0 = void) and their areas."""
    ids = rgb_to_id(read_png(path)[..., :3])
    if ids.shape != source.labels.shape or not np.array_equal(ids, lut[source.labels + 1]):
        raise ExportError(f"{path}: self-check failed: the PNG does not decode to the exported segments")
    values, counts = np.unique(ids, return_counts=True)
    area = dict(zip(values.tolist(), counts.tolist()))
    for seg in segments:
        if area.get(seg["id"], 0) != seg["area"]:
            raise ExportError(f"{path}: self-check failed: segment {seg['id']} area {seg['area']} "
                              f"but {area.get(seg['id'], 0)} pixels in the PNG")


def check_semantic_png(path: Path, expected: np.ndarray) -> None:
    """The PNG is single-channel 8-bit and reads back (as PIL mode "L" too) as the class-index map."""
    try:
        with Image.open(path) as image:
            mode = image.mode
    except OSError as exc:
        raise ExportError(f"{path}: cannot read the PNG back ({exc})") from exc
    values = read_png(path)
    if mode != "L" or values.ndim != 2 or not np.array_equal(values, expected):
        raise ExportError(f"{path}: self-check failed: the PNG does not read back as the exported classes")
