"""COCO run-length encoding of a region given only its cropped mask (no full-size mask built).

COCO RLE runs over the image in column-major (Fortran) order and starts with a run of zeros
(cocodataset/cocoapi `maskApi.c`). We find the run boundaries inside the crop and shift them
to image coordinates, then let pycocotools compress the counts, so the string is pycocotools' own.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def crop_counts(crop: np.ndarray, top: int, left: int, height: int, width: int) -> list[int]:
    """Uncompressed COCO counts of an image whose only foreground is `crop` at (top, left)."""
    h, w = crop.shape
    padded = np.zeros((w, h + 2), dtype=bool)     # one column of the crop per row, zero-padded
    padded[:, 1:-1] = crop.T
    flat = padded.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    column, row = np.divmod(change, h + 2)
    edges = (left + column) * height + (top - 1 + row)
    if top == 0 and h == height:     # a run crossing a column boundary: its end and restart cancel
        values, times = np.unique(edges, return_counts=True)
        edges = values[times % 2 == 1]
    bounds = np.concatenate([[0], edges[edges < height * width], [height * width]])
    return np.diff(bounds).tolist()


def compressed_rle(crop: np.ndarray, top: int, left: int, height: int, width: int) -> dict[str, Any]:
    """pycocotools' compressed RLE (counts as bytes) for a cropped region mask."""
    counts = crop_counts(crop, top, left, height, width)
    return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)


def rle_json(rle: dict[str, Any]) -> dict[str, Any]:
    """The JSON form: counts as an ASCII str (json cannot hold bytes; mmdet `_segm2json`)."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
