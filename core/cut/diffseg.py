"""DiffSeg: merge self-attention maps by symmetric KL, then label each pixel by argmax.

Follows Tian et al., "Diffuse, Attend, and Segment" (CVPR 2024; repository google/diffseg,
`diffseg/segmentor.py`), on the largest attention grid the model has (64 x 64 for SD 1.x/2.x
at 512 px and SDXL at 1024 px in square mode; (h, w) of any aspect ratio otherwise):

1. Aggregation: every resolution's key maps are upsampled bilinearly (half-pixel centres)
   to (h, w) and renormalised, query positions are tiled by nearest repeat, and the
   resolutions are summed with weights proportional to sqrt(#queries) (r for r x r grids).
   The result is kept as one (N, N) float32 matrix, N = h * w, row q = the map of query q.
2. Merging, one KL threshold per iteration (the reference's list): iteration 0 averages,
   for each anchor of a 16 x 16 grid, all N maps within symmetric KL < threshold of it;
   later iterations walk the proposals in order, each one not yet matched becoming an
   anchor that averages every proposal within the threshold.
3. Pixels: the proposals are upsampled bilinearly to the atom map and each pixel takes the
   largest (the reference's x8 upsampling and argmax), in row chunks so memory stays bounded.

The KL is computed as a matrix product (see `kl_matrix`), in float32 at iteration 0 (the
reference uses float16 there) and float64 later (as the reference); probabilities are
clamped to float32's smallest normal number before the logarithm, where the reference
would produce NaN and leave the pair unmatched (docs/decisions/0301, 0305).

Hierarchy: the proposals are merged further, pairwise, closest symmetric KL first (the
merged map is the mean of its proposals, as DiffSeg merges), giving a binary tree whose
node costs map the KL merge distance onto the granularity contract so that the default
granularity shows DiffSeg's own result and smaller granularities show coarser merges.
Its tokens are ids on the attention grid; each leaf keeps its proposal as `signal`.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from core.cut.hierarchy import CutNode
from core.errors import CutTreeError
from core.features import Features
from core.jobs import CancelToken, check_cancel
from core.settings import Settings

KL_THRESHOLDS = Settings.kl_thresholds   # the reference's COCO-Stuff setting, [1.1] * 3
ANCHORS_PER_SIDE = 16
#: the largest grid DiffSeg merges on: the reference's 64 x 64 (SD 1.x at 1024 px has 128 x 128)
MAX_CELLS = 64 * 64
#: output rows upsampled at once by `pixel_labels` (K x rows x width floats at a time)
PIXEL_ROWS = 64
#: the granularity at which the tree shows DiffSeg's own proposals (the default tau)
REFERENCE_GRANULARITY = Settings.tau
_TINY = float(np.finfo(np.float32).tiny)


def bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation with half-pixel centres (align_corners=False)."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def nearest_index(n_out: int, n_in: int) -> np.ndarray:
    """Source index of each output position for nearest upsampling (repeat when n_out/n_in is whole)."""
    return np.minimum((np.arange(n_out) * n_in) // n_out, n_in - 1)


def resolution_weights(shapes: list[tuple[int, int]]) -> np.ndarray:
    """Weights proportional to sqrt(#queries) of each resolution, summing to one."""
    sizes = np.sqrt([hr * wr for hr, wr in shapes])
    return sizes / sizes.sum()


def aggregate_attention(attention: dict[tuple[int, int], np.ndarray], grid: tuple[int, int],
                        weights: Optional[np.ndarray] = None) -> np.ndarray:
    """The (N, N) multi-resolution attention on the (h, w) grid; each row sums to one."""
    h, w = grid
    shapes = list(attention)
    weights = resolution_weights(shapes) if weights is None else np.asarray(weights, float)
    total = np.zeros((h * w, h * w), dtype=np.float32)
    for (hr, wr), weight in zip(shapes, weights):
        maps = np.asarray(attention[(hr, wr)], dtype=np.float32)
        if maps.shape != (hr * wr, hr * wr):
            raise CutTreeError(f"attention for grid {hr}x{wr} has shape {maps.shape}, "
                               f"expected {(hr * wr, hr * wr)}")
        keys = upsample_maps(maps.reshape(-1, hr, wr), grid)                # (queries, h * w)
        keys = keys / keys.sum(axis=1, keepdims=True)
        if (hr, wr) == grid:
            total += np.float32(weight) * keys
            continue
        query = (nearest_index(h, hr)[:, None] * wr + nearest_index(w, wr)[None, :]).ravel()
        total += np.float32(weight) * keys[query]
    return total


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K, h, w) maps upsampled bilinearly to (K, H * W) float32: two matrix products, each
    one BLAS call (a stacked product per map was most of the aggregation's time)."""
    k, h, w = maps.shape
    if (h, w) == size:
        return maps.reshape(k, h * w)
    cols = maps.reshape(k * h, w).astype(np.float32) @ bilinear_matrix(size[1], w).T.astype(np.float32)
    cols = cols.reshape(k, h, size[1]).transpose(1, 0, 2).reshape(h, k * size[1])
    rows = bilinear_matrix(size[0], h).astype(np.float32) @ cols                  # (H, K * W)
    return rows.reshape(size[0], k, size[1]).transpose(1, 0, 2).reshape(k, size[0] * size[1])


def anchor_grid(grid: tuple[int, int], per_side: int = ANCHORS_PER_SIDE) -> np.ndarray:
    """Token ids of the anchor grid, row-major; the reference's formula with 63 -> side - 1.

    On 64 x 64 this gives rows and columns {1, 5, ..., 61}; a side shorter than
    `per_side` takes every position.
    """
    axes = [_anchor_axis(side, min(per_side, side)) for side in grid]
    rows, cols = np.meshgrid(axes[0], axes[1], indexing="ij")
    return (rows * grid[1] + cols).ravel()


def _anchor_axis(side: int, points: int) -> np.ndarray:
    if points == 1:
        return np.array([(side - 1) // 2])
    step = (side - 1) // (points - 1)
    start = (side - 1 - step * (points - 1)) // 2
    return start + step * np.arange(points)


def symmetric_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """0.5 * sum (p - q)(log p - log q) over the last axis (direct form, for checks)."""
    lp, lq = np.log(np.maximum(p, _TINY)), np.log(np.maximum(q, _TINY))
    return 0.5 * ((p - q) * (lp - lq)).sum(axis=-1)


def kl_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Symmetric KL between every row of `a` and every row of `b`, as matrix products.

    0.5 [sum a log a + sum b log b - a . log b - b . log a], computed in the dtype of `a`.
    """
    la, lb = np.log(np.maximum(a, _TINY)), np.log(np.maximum(b, _TINY))
    self_a = (a * la).sum(axis=1)
    self_b = (b * lb).sum(axis=1)
    cross = a @ lb.T + la @ b.T
    return 0.5 * (self_a[:, None] + self_b[None, :] - cross)


def merge_anchors(maps: np.ndarray, anchors: np.ndarray, threshold: float,
                  chunk: int = 64, cancel: Optional[CancelToken] = None) -> np.ndarray:
    """Iteration 0: for each anchor, the mean of all maps within `threshold` of it."""
    log_maps = np.log(np.maximum(maps, _TINY))
    self_maps = (maps * log_maps).sum(axis=1)
    proposals = []
    for start in range(0, len(anchors), chunk):
        check_cancel(cancel)
        ids = anchors[start:start + chunk]
        a, la = maps[ids], log_maps[ids]
        kl = 0.5 * (self_maps[ids][:, None] + self_maps[None, :] - a @ log_maps.T - la @ maps.T)
        marked = kl < threshold
        marked[np.arange(len(ids)), ids] = True   # an anchor always matches itself
        sums = (marked.astype(maps.dtype) @ maps).astype(np.float64)
        proposals.append(sums / marked.sum(axis=1, keepdims=True))
    return np.concatenate(proposals)


def merge_greedy(proposals: np.ndarray, threshold: float) -> np.ndarray:
    """Later iterations: in order, each unmatched proposal averages all within `threshold`."""
    close = kl_matrix(proposals, proposals) < threshold
    np.fill_diagonal(close, True)
    matched = np.zeros(len(proposals), dtype=bool)
    merged = []
    for i in range(len(proposals)):
        if matched[i]:
            continue
        matched |= close[i]
        merged.append(proposals[close[i]].mean(axis=0))
    return np.array(merged)


def diffseg_proposals(maps: np.ndarray, grid: tuple[int, int], thresholds: Sequence[float] = KL_THRESHOLDS,
                      cancel: Optional[CancelToken] = None) -> np.ndarray:
    """(K, N) merged attention maps from the aggregated (N, N) attention, one merging
    iteration per threshold."""
    if not thresholds:
        raise ValueError("DiffSeg needs at least one merging iteration")
    proposals = merge_anchors(maps, anchor_grid(grid), thresholds[0], cancel=cancel)
    for threshold in thresholds[1:]:
        check_cancel(cancel)
        proposals = merge_greedy(proposals, threshold)
    return proposals


def argmax_labels(proposals: np.ndarray, grid: tuple[int, int],
                  size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Per-position index of the largest proposal, on the token grid or upsampled to `size`.

    With `size` the proposals are first upsampled bilinearly (as the reference does x8).
    """
    maps = proposals.reshape(-1, *grid)
    if size is not None:
        maps = bilinear_matrix(size[0], grid[0]) @ maps @ bilinear_matrix(size[1], grid[1]).T
    return np.argmax(maps, axis=0)


def merge_tree(proposals: np.ndarray, labels: np.ndarray, threshold: float = KL_THRESHOLDS[-1]) -> CutNode:
    """Pairwise merges of all proposals, closest symmetric KL first; leaf k holds the grid cells
    proposal k wins (maybe none: it can still win pixels between them) and the proposal."""
    nodes: list[CutNode] = [CutNode(np.flatnonzero(labels == k), signal=p) for k, p in enumerate(proposals)]
    members = [[k] for k in range(len(proposals))]
    maps = proposals.copy()
    logs = np.log(np.maximum(maps, _TINY))
    selfs = (maps * logs).sum(axis=1)
    dist = 0.5 * (selfs[:, None] + selfs[None, :] - maps @ logs.T - logs @ maps.T)
    np.fill_diagonal(dist, np.inf)
    alive = np.ones(len(nodes), dtype=bool)
    height = 0.0
    for _ in range(len(nodes) - 1):
        i, j = sorted(np.unravel_index(np.argmin(dist), dist.shape))
        height = max(height, float(dist[i, j]))   # monotone, so parents split first
        nodes[i] = CutNode(np.sort(np.concatenate([nodes[i].tokens, nodes[j].tokens])),
                           cost=merge_cost(height, threshold), children=[nodes[i], nodes[j]])
        members[i] += members[j]
        maps[i] = proposals[members[i]].mean(axis=0)
        logs[i] = np.log(np.maximum(maps[i], _TINY))
        selfs[i] = maps[i] @ logs[i]
        alive[j] = False
        row = 0.5 * (selfs[i] + selfs - logs @ maps[i] - maps @ logs[i])
        row[~alive | (np.arange(len(row)) == i)] = np.inf
        dist[j, :] = dist[:, j] = np.inf
        dist[i, :] = dist[:, i] = row
    return nodes[int(np.flatnonzero(alive)[0])]


def merge_cost(kl_distance: float, threshold: float = KL_THRESHOLDS[-1]) -> float:
    """The granularity below which a merge at this KL distance is shown merged.

    cost = g_ref * t / (t + d): at the reference granularity every DiffSeg proposal is
    shown; at granularity g the shown segments are merges at KL < t (g_ref / g - 1), so
    g_ref / 2 shows the proposals merged once more at the DiffSeg threshold t.
    """
    return REFERENCE_GRANULARITY * threshold / (threshold + max(kl_distance, 0.0))


def diffseg_hierarchy(features: Features, settings: Settings,
                      cancel: Optional[CancelToken] = None) -> CutNode:
    """DiffSeg on the features' attention maps, as a cut hierarchy over the token grid."""
    if not features.attention:
        raise CutTreeError(f"the diffseg method needs self-attention maps from a diffusion encoder; "
                           f"the {features.encoder} encoder gives none (choose the diffusion "
                           f"encoder, or the diffcut or walk method)")
    grid = attention_grid(features)
    maps = aggregate_attention(features.attention, grid)
    check_cancel(cancel)
    proposals = diffseg_proposals(maps, grid, settings.kl_thresholds, cancel=cancel)
    del maps
    labels = argmax_labels(proposals, grid).ravel()
    root = merge_tree(proposals, labels, settings.kl_thresholds[-1])
    if not root.children:
        root.cost = math.inf
    return root


def attention_grid(features: Features) -> tuple[int, int]:
    """The largest attention grid of the features with at most MAX_CELLS cells (DiffSeg
    aggregates and merges there; its (N, N) matrix is then at most 64 MiB), else the smallest."""
    cells = sorted(features.attention, key=lambda shape: shape[0] * shape[1])
    fitting = [shape for shape in cells if shape[0] * shape[1] <= MAX_CELLS]
    return fitting[-1] if fitting else cells[0]


def pixel_labels(leaves: Sequence[CutNode], grid: tuple[int, int], shape: tuple[int, int],
                 cancel: Optional[CancelToken] = None) -> np.ndarray:
    """(H, W) index of the leaf whose proposal, upsampled bilinearly from `grid`, is largest.

    As the reference's x8 upsampling and argmax, but to any size and PIXEL_ROWS output rows at
    a time: columns first (h x K x W), then each chunk of rows."""
    maps = np.stack([leaf.signal.reshape(grid) for leaf in leaves]).astype(np.float32)
    k = len(leaves)
    wide = maps.reshape(k * grid[0], grid[1]) @ bilinear_matrix(shape[1], grid[1]).T.astype(np.float32)
    wide = wide.reshape(k, grid[0], shape[1]).transpose(1, 0, 2).reshape(grid[0], k * shape[1])
    up_rows = bilinear_matrix(shape[0], grid[0]).astype(np.float32)
    out = np.empty(shape, dtype=np.int32)
    for start in range(0, shape[0], PIXEL_ROWS):
        check_cancel(cancel)
        rows = up_rows[start:start + PIXEL_ROWS] @ wide                             # (rows, K * W)
        out[start:start + len(rows)] = np.argmax(rows.reshape(len(rows), k, shape[1]), axis=1)
    return out
