"""COCO polygons traced from a region mask: outer rings only, simple, >= 3 points each.

The crop is upsampled 2x and traced with marching squares (`skimage.measure.find_contours`) so
the rings run along pixel edges (corners cut by a quarter pixel) instead of through pixel
centres; a one-pixel region becomes an octagon pycocotools rasterises back to that pixel. Rings
are simplified with Douglas-Peucker (`skimage.measure.approximate_polygon`) and the simplified
ring is kept only if it does not cross itself (else the unsimplified ring is used). COCO
polygons are unioned on decoding, so holes cannot be represented: hole rings are counted as lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage import measure


@dataclass
class PolygonResult:
    """Rings as flat COCO lists [x1, y1, x2, y2, ...] and what could not be represented."""

    rings: list[list[float]] = field(default_factory=list)
    holes_lost: int = 0
    parts_dropped: int = 0


def trace_polygons(crop: np.ndarray, top: int, left: int, tolerance: float = 0.5,
                   min_part_area: float = 0.5) -> PolygonResult:
    """Outer rings of a cropped mask at (top, left), in image pixel-edge coordinates."""
    big = np.zeros((2 * crop.shape[0] + 2, 2 * crop.shape[1] + 2), dtype=np.uint8)
    big[1:-1, 1:-1] = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)
    result = PolygonResult()
    for contour in measure.find_contours(big, 0.5, positive_orientation="high"):
        # the level-0.5 crossing between upsampled rows 2r and 2r + 1 (pad included) is the
        # top edge of crop row r: coordinate u maps to (u - 0.5) / 2 in the crop
        ring = (contour - 0.5) / 2.0 + np.array([top, left])
        if _signed_area(ring) > 0:
            result.holes_lost += 1
            continue
        ring = _simplify(ring, tolerance)
        if len(ring) < 3 or abs(_signed_area(ring)) < min_part_area:
            result.parts_dropped += 1
            continue
        result.rings.append([float(round(v, 2)) for v in ring[:, ::-1].ravel()])
    return result


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker, falling back to the raw ring if simplification made it cross itself."""
    closed = ring if np.array_equal(ring[0], ring[-1]) else np.vstack([ring, ring[:1]])
    simple = measure.approximate_polygon(closed, tolerance)[:-1]
    if len(simple) >= 3 and not self_intersects(simple):
        return simple
    return closed[:-1]


def _signed_area(ring: np.ndarray) -> float:
    """Shoelace area in (row, col) coordinates; outer rings traced here are negative, holes positive."""
    y, x = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def self_intersects(ring: np.ndarray) -> bool:
    """Whether any two non-adjacent edges of the closed ring touch or cross."""
    n = len(ring)
    if n < 4:
        return False
    a, b = ring, np.roll(ring, -1, axis=0)
    i, j = np.triu_indices(n, k=2)
    keep = ~((i == 0) & (j == n - 1))             # the first and last edges share a vertex
    i, j = i[keep], j[keep]
    for start in range(0, len(i), 200_000):       # bounded memory on long rings
        if _segments_meet(a[i[start:start + 200_000]], b[i[start:start + 200_000]],
                          a[j[start:start + 200_000]], b[j[start:start + 200_000]]).any():
            return True
    return False


def _segments_meet(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    def cross(o: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        return (s[:, 0] - o[:, 0]) * (t[:, 1] - o[:, 1]) - (s[:, 1] - o[:, 1]) * (t[:, 0] - o[:, 0])

    d1, d2 = cross(q1, q2, p1), cross(q1, q2, p2)
    d3, d4 = cross(p1, p2, q1), cross(p1, p2, q2)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)

    def on(o: np.ndarray, s: np.ndarray, t: np.ndarray, d: np.ndarray) -> np.ndarray:
        inside = ((np.minimum(o[:, 0], s[:, 0]) <= t[:, 0]) & (t[:, 0] <= np.maximum(o[:, 0], s[:, 0]))
                  & (np.minimum(o[:, 1], s[:, 1]) <= t[:, 1]) & (t[:, 1] <= np.maximum(o[:, 1], s[:, 1])))
        return (d == 0) & inside

    return proper | on(q1, q2, p1, d1) | on(q1, q2, p2, d2) | on(p1, p2, q1, d3) | on(p1, p2, q2, d4)
