"""A plain, literal re-implementation of DiffSeg's label step, for parity tests and benchmarks.

Written from Tian et al. (CVPR 2024) and the behaviour of google/diffseg's `segmentor.py`:
a side^4 float64 tensor (side = 64 there) built by upsampling every resolution's key maps
bilinearly (Keras UpSampling2D = torch `align_corners=False`), renormalising and repeating the
query axes; a 16 x 16 anchor grid from `side - 1`; iteration 0 compares each anchor with
every map by the literal symmetric KL and averages the maps under the threshold; later
iterations walk the proposals greedily (each proposal in order, unless matched, averages all
within the threshold); the merged maps are upsampled bilinearly to the output
and each pixel takes the argmax. One deliberate difference: the reference casts iteration 0 to
float16 (whose underflow drops pairs); here it stays float64. Deliberately slow and literal.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def sampling_grid(side: int, points: int = 16) -> np.ndarray:
    """(points^2, 2) anchor coordinates: evenly spaced by (side - 1) // (points - 1), centred."""
    step = (side - 1) // (points - 1)
    start = (side - 1 - step * (points - 1)) // 2
    axis = np.linspace(start, start + step * (points - 1), points)
    rows, cols = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1).astype(int)


def aggregate(attention: dict[tuple[int, int], np.ndarray], side: int) -> np.ndarray:
    """(side, side, side, side) float64: query (i, j) -> its aggregated key map."""
    sizes = [shape[0] for shape in attention]
    ratios = np.sqrt([shape[0] * shape[1] for shape in attention])
    ratios = ratios / ratios.sum()
    total = torch.zeros(side, side, side, side, dtype=torch.float64)
    for size, weight in zip(sizes, ratios):
        scale = side // size
        keys = torch.from_numpy(attention[(size, size)]).double().reshape(-1, 1, size, size)
        keys = F.interpolate(keys, scale_factor=scale, mode="bilinear", align_corners=False)
        keys = keys.reshape(size, size, side, side)
        keys = keys / keys.sum(dim=(2, 3), keepdim=True)
        keys = keys.repeat_interleave(scale, dim=0).repeat_interleave(scale, dim=1)
        total += keys * float(weight)
    return total.numpy()


def kl(x: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Symmetric KL of each of the (A, side, side) maps `x` with each of the (N, side, side) `maps`,
    (A, N): the reference's sum of x (log x - log y) / 2 - y (log x - log y) / 2 over the map,
    expanded into its four sums so that the 4096 x 4096 comparisons fit a test."""
    x, maps = x.reshape(len(x), -1), maps.reshape(len(maps), -1)
    log_x, log_maps = np.log(x), np.log(maps)
    return ((x * log_x).sum(1)[:, None] - x @ log_maps.T - log_x @ maps.T + (maps * log_maps).sum(1)[None]) / 2


def merge(attns: np.ndarray, thresholds: list[float], points: int = 16) -> np.ndarray:
    """(K, side, side) merged maps after one iteration per threshold."""
    side = attns.shape[0]
    flat = attns.reshape(side * side, side, side)
    grid = sampling_grid(side, points)
    marked = (kl(attns[grid[:, 0], grid[:, 1]], flat) < thresholds[0]).astype(np.float64)
    merged = (marked @ flat.reshape(side * side, -1) / marked.sum(1, keepdims=True)).reshape(-1, side, side)
    for threshold in thresholds[1:]:
        matched, kept = set(), []
        for i, anchor in enumerate(merged):
            if i in matched:
                continue
            matched.add(i)
            close = kl(anchor[None], merged)[0] < threshold
            matched.update(np.flatnonzero(close).tolist())
            kept.append(merged[close].mean(0))
        merged = np.array(kept)
    return merged


def reference_labels(attention: dict[tuple[int, int], np.ndarray], side: int, out: int,
                     thresholds: list[float]) -> np.ndarray:
    """(out, out) DiffSeg labels: aggregate at `side`, merge, upsample bilinearly, argmax."""
    merged = merge(aggregate(attention, side), thresholds)
    up = F.interpolate(torch.from_numpy(merged)[None], scale_factor=out // side, mode="bilinear",
                       align_corners=False)[0]
    return up.argmax(0).numpy()
