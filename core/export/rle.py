"""COCO run-length encoding of a region straight from the working-resolution map (no full-size mask).

COCO RLE runs over the image in column-major (Fortran) order and starts with a run of zeros
(cocodataset/cocoapi `maskApi.c`). A region's full-size mask is the nearest-neighbour upsampling
of its working mask: working row r becomes image rows `row_starts[r]:row_starts[r + 1]`, columns
likewise. So every image column that comes from working column j changes value at the same rows,
the starts of the working rows where column j changes, and the full-size run boundaries are those
rows shifted by each such column's offset: the work is in the number of runs, not of pixels.
pycocotools then compresses the counts, so the string is pycocotools' own.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from core.export.regions import ExportImage


def upsampled_counts(mask: np.ndarray, row_starts: np.ndarray, col_starts: np.ndarray,
                     height: int, width: int) -> np.ndarray:
    """Uncompressed COCO counts of a height x width image whose only foreground is `mask` (h, w)
    upsampled: mask row r covers image rows row_starts[r]:row_starts[r + 1] (h + 1 increasing
    starts), columns likewise."""
    h, w = mask.shape
    padded = np.zeros((w, h + 2), dtype=bool)     # one column of the mask per row, zero-padded
    padded[:, 1:-1] = mask.T
    column, boundary = np.nonzero(padded[:, 1:] != padded[:, :-1])
    change_rows = np.asarray(row_starts, dtype=np.int64)[boundary]      # in order of column, then row
    per_column = np.bincount(column, minlength=w)
    first = np.concatenate([[0], np.cumsum(per_column)[:-1]])
    repeats = np.diff(np.asarray(col_starts, dtype=np.int64))
    source = np.repeat(np.arange(w), repeats)                       # working column of each image column
    image_column = int(col_starts[0]) + np.arange(len(source), dtype=np.int64)
    n = per_column[source]
    total = int(n.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    edges = np.repeat(image_column * height, n) + change_rows[np.repeat(first[source], n) + within]
    if row_starts[0] == 0 and row_starts[-1] == height:   # a run crossing a column boundary: its end and restart cancel
        tied = np.flatnonzero(edges[1:] == edges[:-1])
        edges = np.delete(edges, np.concatenate([tied, tied + 1]))
    bounds = np.concatenate([[0], edges[edges < height * width], [height * width]])
    return np.diff(bounds)


def region_counts(image: ExportImage, index: int) -> np.ndarray:
    """Uncompressed COCO counts of region `index` of `image` at the image size."""
    rows, cols = image.regions[index].small_slices
    return upsampled_counts(image.small[rows, cols] == index, image.row_starts[rows.start:rows.stop + 1],
                            image.col_starts[cols.start:cols.stop + 1], image.height, image.width)


def region_rle(image: ExportImage, index: int) -> dict[str, Any]:
    """pycocotools' compressed RLE (counts as bytes) of region `index` at the image size."""
    counts = region_counts(image, index).tolist()
    return mask_utils.frPyObjects({"size": [image.height, image.width], "counts": counts},
                                  image.height, image.width)


def rle_json(rle: dict[str, Any]) -> dict[str, Any]:
    """The JSON form: counts as an ASCII str (json cannot hold bytes; mmdet `_segm2json`)."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
