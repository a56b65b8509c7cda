"""COCO polygons traced from a region mask: outer rings only, simple, >= 3 points each.

Rings follow the pixel edges with corners cut through the edge midpoints (the marching-squares
contour at level 0.5, traced here with numpy for all regions at once instead of
`skimage.measure.find_contours`, whose Python contour assembly dominated export time);
unsimplified they rasterise in pycocotools to exactly the region's pixels with holes filled.
Rings are simplified with Douglas-Peucker (Douglas & Peucker 1973, "Algorithms for the
reduction of the number of points required to represent a digitized line"), and a simplified
ring is kept only if it does not cross itself (else the unsimplified ring is used). COCO
polygons are unioned on decoding, so holes cannot be represented: hole rings are counted as lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph


@dataclass
class PolygonResult:
    """Rings as flat COCO lists [x1, y1, x2, y2, ...] and what could not be represented."""

    rings: list[list[float]] = field(default_factory=list)
    holes_lost: int = 0
    parts_dropped: int = 0


MAX_DROPPED = 0.05     # share of a region's area that dropping specks may lose

# Directions of boundary edges, pixel-edge (y, x) coordinates: 0 = +x, 1 = +y, 2 = -x, 3 = -y.
_STEP = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]])


def trace_polygons(crop: np.ndarray, top: int, left: int, tolerance: float = 1.0,
                   min_part_area: float = 2.0) -> PolygonResult:
    """Polygons of one cropped mask at (top, left), in image pixel-edge coordinates."""
    rings = region_rings(np.where(crop, 0, -1), 1)[0]
    return polygons_from_rings([ring + np.array([top, left]) for ring in rings], tolerance, min_part_area)


def polygons_from_rings(rings: list[np.ndarray], tolerance: float = 1.0,
                        min_part_area: float = 2.0) -> PolygonResult:
    """COCO polygons from one region's boundary rings: holes counted, specks dropped, simplified.

    Specks (parts enclosing less than `min_part_area` square pixels) are dropped and counted,
    smallest first, as long as they add up to at most `MAX_DROPPED` of the region's area; the
    largest part is always kept, so a tiny region or a region made of specks keeps its polygons.
    """
    result = PolygonResult()
    outer = []
    for ring in rings:
        area = _signed_area(ring)
        if area < 0:
            result.holes_lost += 1
        else:
            outer.append((area, ring))
    outer.sort(key=lambda item: item[0])
    budget = MAX_DROPPED * sum(area for area, _ in outer)
    for rank, (area, ring) in enumerate(outer):
        if rank < len(outer) - 1 and area < min_part_area and area <= budget:
            budget -= area
            result.parts_dropped += 1
            continue
        simple = _simplify(ring, tolerance)
        result.rings.append(np.round(simple[:, ::-1], 2).ravel().tolist())
    return result


def region_rings(labels: np.ndarray, count: int) -> list[list[np.ndarray]]:
    """Every boundary ring of every region of a label map (-1 = none), as (y, x) point arrays.

    Each side of a region's pixel facing another label is a directed unit edge, oriented so the
    region lies on the walker's right (outer rings then have positive area in `_signed_area`,
    holes negative); where a region's pixels touch only diagonally the walk turns right, keeping
    4-connected parts apart. A ring runs through its edges' midpoints (the marching-squares
    contour at level 0.5): along pixel edges with corners cut, so rings never touch and
    pycocotools rasterises a ring back to exactly its pixels. All regions are traced at once.
    """
    padded = np.pad(labels.astype(np.int32), 1, constant_values=-1)
    height, width_px = labels.shape
    starts, directions, owners = [], [], []
    for direction, (dy, dx) in enumerate(_STEP):
        ny, nx = -dx, dy                                 # the walker's left, where the outside is
        neighbour = padded[1 + ny:1 + ny + height, 1 + nx:1 + nx + width_px]
        r, c = np.nonzero((labels >= 0) & (neighbour != labels))
        r, c = r + 1, c + 1                              # padded coordinates
        corner = {0: (r, c), 1: (r, c + 1), 2: (r + 1, c + 1), 3: (r + 1, c)}[direction]
        starts.append(np.stack(corner, axis=1))
        directions.append(np.full(len(r), direction))
        owners.append(padded[r, c].astype(np.int64))
    start, direction, owner = np.concatenate(starts), np.concatenate(directions), np.concatenate(owners)
    out: list[list[np.ndarray]] = [[] for _ in range(count)]
    if len(start) == 0:
        return out
    # an edge leaving a corner in a direction is the side of exactly one pixel (the one on the
    # walker's right), so (corner, direction) identifies it; successors must share its region
    width = padded.shape[1] + 1
    table = np.full(((padded.shape[0] + 1) * width, 4), -1, dtype=np.int64)
    table[start[:, 0] * width + start[:, 1], direction] = np.arange(len(start))
    end = start + _STEP[direction]
    end_key = end[:, 0] * width + end[:, 1]
    successor = np.full(len(start), -1, dtype=np.int64)
    for turn in (1, 0, 3):                               # prefer right, straight, left
        candidate = table[end_key, (direction + turn) % 4]
        found = (successor < 0) & (candidate >= 0)
        found[found] = owner[candidate[found]] == owner[found]
        successor[found] = candidate[found]
    for cycle in _cycles(successor):
        out[int(owner[cycle[0]])].append(_ring_points(cycle, start - 1, direction))
    return out


def _cycles(successor: np.ndarray) -> list[np.ndarray]:
    """The cycles of a permutation, each in walking order (list ranking by pointer jumping)."""
    n = len(successor)
    graph = sparse.csr_matrix((np.ones(n, dtype=np.int8), (np.arange(n), successor)), shape=(n, n))
    count, cycle = csgraph.connected_components(graph, directed=True, connection="weak")
    leader = np.full(count, n, dtype=np.int64)
    np.minimum.at(leader, cycle, np.arange(n))
    predecessor = np.empty(n, dtype=np.int64)
    predecessor[successor] = np.arange(n)
    is_leader = leader[cycle] == np.arange(n)
    predecessor[is_leader] = np.flatnonzero(is_leader)
    rank = (~is_leader).astype(np.int64)
    while True:                       # rank = steps from the leader; doubles the reach each round
        jumped = predecessor[predecessor]
        if np.array_equal(jumped, predecessor):
            break
        rank = rank + rank[predecessor]
        predecessor = jumped
    order = np.lexsort((rank, cycle))
    bounds = np.flatnonzero(np.diff(cycle[order])) + 1
    return np.split(order, bounds)


def _ring_points(cycle: np.ndarray, starts: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Midpoints of a cycle's edges, keeping only the ends of each straight run."""
    edges = cycle
    heading = direction[edges]
    points = starts[edges] + 0.5 * _STEP[heading]
    before = np.concatenate([heading[-1:], heading[:-1]])
    after = np.concatenate([heading[1:], heading[:1]])
    bend = (heading != before) | (heading != after)
    return points[bend]


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker, falling back to the raw ring if simplification made it cross itself."""
    if np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    if len(ring) <= 3 or tolerance <= 0:
        return ring
    far = int(np.argmax(np.hypot(*(ring - ring[0]).T)))       # split the ring into two chains
    keep = np.zeros(len(ring), dtype=bool)
    keep[[0, far]] = True
    _mark_chain(ring, 0, far, tolerance, keep)
    _mark_chain(np.vstack([ring, ring[:1]]), far, len(ring), tolerance, keep)
    simple = ring[keep]
    if len(simple) >= 3 and abs(_signed_area(simple)) >= 0.5 * abs(_signed_area(ring)) \
            and not self_intersects(simple):
        return simple
    return ring


def _mark_chain(points: np.ndarray, first: int, last: int, tolerance: float, keep: np.ndarray) -> None:
    """Keep the points of points[first..last] that Douglas-Peucker needs (iterative, no recursion)."""
    stack = [(first, last)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        start, end = points[a], points[b]
        middle = points[a + 1:b]
        d = end - start
        length = float(np.hypot(*d))
        if length == 0:
            dist = np.hypot(*(middle - start).T)
        else:
            dist = np.abs(d[0] * (middle[:, 1] - start[1]) - d[1] * (middle[:, 0] - start[0])) / length
        i = int(np.argmax(dist))
        if dist[i] > tolerance:
            split = a + 1 + i
            keep[split % len(keep)] = True
            stack.extend([(a, split), (split, b)])


def _signed_area(ring: np.ndarray) -> float:
    """Shoelace area in (row, col) coordinates: positive for outer rings traced here, negative for holes."""
    y, x = ring[:, 0], ring[:, 1]
    inner = float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))
    return 0.5 * (inner + float(x[-1] * y[0] - x[0] * y[-1]))


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
