"""Rasterising a brush stroke: the pixels a round brush covers when dragged along a path."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def stroke_mask(shape: tuple[int, int], points: Sequence[tuple[float, float]] | np.ndarray,
                radius: float) -> np.ndarray:
    """Pixels whose centre lies within `radius` of the polyline through `points`.

    Points are (row, col) in continuous pixel coordinates (pixel (r, c) spans [r, r+1) x
    [c, c+1)), as a mouse position maps to them; one point is a single dab. Each segment is
    evaluated only over its bounding box, so a stroke costs what it covers, not the image.
    """
    mask = np.zeros(shape, dtype=bool)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not len(pts):
        return mask
    radius = max(float(radius), 0.5)     # a dab always covers the pixel under it
    ends = pts[1:] if len(pts) > 1 else pts
    for start, end in zip(pts, ends):
        _stamp_segment(mask, start, end, radius)
    return mask


def _stamp_segment(mask: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float) -> None:
    """Set the pixels within `radius` of the segment start-end (a capsule)."""
    low = np.floor(np.minimum(start, end) - radius).astype(int)
    high = np.ceil(np.maximum(start, end) + radius).astype(int) + 1
    top, left = np.maximum(low, 0)
    bottom, right = np.minimum(high, mask.shape)
    if top >= bottom or left >= right:
        return
    rows, cols = np.mgrid[top:bottom, left:right].astype(np.float64) + 0.5
    direction = end - start
    length2 = float(direction @ direction)
    t = 0.0 if length2 == 0 else np.clip(((rows - start[0]) * direction[0] + (cols - start[1]) * direction[1])
                                          / length2, 0.0, 1.0)
    dist2 = (rows - start[0] - t * direction[0]) ** 2 + (cols - start[1] - t * direction[1]) ** 2
    mask[top:bottom, left:right] |= dist2 <= radius * radius
