"""DiffSeg: merge self-attention maps by symmetric KL, then label each token by argmax.

Follows Tian et al., "Diffuse, Attend, and Segment" (CVPR 2024; repository google/diffseg,
`diffseg/segmentor.py`), generalised from its fixed 64x64 grid to any token grid (h, w):

1. Aggregation: every resolution's key maps are upsampled bilinearly (half-pixel centres)
   to (h, w) and renormalised, query positions are tiled by nearest repeat, and the
   resolutions are summed with weights proportional to sqrt(#queries) (r for r x r grids).
   The result is kept as one (N, N) float32 matrix, N = h * w, row q = the map of query q.
2. Merging: iteration 0 averages, for each anchor of a 16 x 16 grid, all N maps within
   symmetric KL < threshold of it; later iterations walk the proposals in order, each one
   not yet matched becoming an anchor that averages every proposal within the threshold.
3. Each token takes the proposal with the largest value there.

The KL is computed as a matrix product (see `kl_matrix`), in float32 at iteration 0 (the
reference uses float16 there) and float64 later (as the reference); probabilities are
clamped to float32's smallest normal number before the logarithm, where the reference
would produce NaN and leave the pair unmatched (docs/decisions/0301-diffseg.md).

Hierarchy: the proposals are merged further, pairwise, closest symmetric KL first (the
merged map is the mean of its proposals, as DiffSeg merges), giving a binary tree whose
node costs map the KL merge distance onto the granularity contract so that the default
granularity shows DiffSeg's own result and smaller granularities show coarser merges.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from core.cut.hierarchy import CutNode
from core.errors import CutTreeError
from core.features import Features
from core.jobs import CancelToken, check_cancel
from core.settings import Settings

KL_THRESHOLD = 1.1            # the reference's COCO-Stuff setting, [1.1] * 3
ITERATIONS = 3
ANCHORS_PER_SIDE = 16
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
        up_h = bilinear_matrix(h, hr).astype(np.float32)
        up_w = bilinear_matrix(w, wr).astype(np.float32)
        keys = up_h @ (maps.reshape(-1, hr, wr) @ up_w.T)          # (queries, h, w)
        keys = keys.reshape(hr * wr, h * w)
        keys /= keys.sum(axis=1, keepdims=True)
        query = (nearest_index(h, hr)[:, None] * wr + nearest_index(w, wr)[None, :]).ravel()
        total += np.float32(weight) * keys[query]
    return total


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


def diffseg_proposals(maps: np.ndarray, grid: tuple[int, int], threshold: float = KL_THRESHOLD,
                      iterations: int = ITERATIONS, cancel: Optional[CancelToken] = None) -> np.ndarray:
    """(K, N) merged attention maps from the aggregated (N, N) attention."""
    if iterations < 1:
        raise ValueError("DiffSeg needs at least one merging iteration")
    proposals = merge_anchors(maps, anchor_grid(grid), threshold, cancel=cancel)
    for _ in range(iterations - 1):
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


def merge_tree(proposals: np.ndarray, labels: np.ndarray) -> CutNode:
    """Pairwise merges of the proposals that own tokens, closest symmetric KL first."""
    owners = np.unique(labels)
    nodes: list[CutNode] = [CutNode(np.flatnonzero(labels == k)) for k in owners]
    members = [[int(k)] for k in owners]
    maps = proposals[owners].copy()
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
                           cost=merge_cost(height), children=[nodes[i], nodes[j]])
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


def merge_cost(kl_distance: float, threshold: float = KL_THRESHOLD) -> float:
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
    maps = aggregate_attention(features.attention, features.grid)
    check_cancel(cancel)
    proposals = diffseg_proposals(maps, features.grid, cancel=cancel)
    labels = argmax_labels(proposals, features.grid).ravel()
    root = merge_tree(proposals, labels)
    if not root.children:
        root.cost = math.inf
    return root
