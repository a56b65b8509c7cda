"""Pixel atoms that follow image contours, and the region adjacency graph over them.

The classic encoder cuts the image into compact watershed basins of a multi-scale
colour-gradient map (after the oriented watershed of Arbelaez et al., TPAMI 2011, without
orientations); the contour method builds the fine levels by merging adjacent atoms
(core.cut.contour). The graph keeps, per
pair of adjacent atoms, the summed contour strength along their common boundary and its
length, and per atom its pixel count and colour sum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.color import rgb2lab
from skimage.segmentation import watershed

#: gradient scales (Gaussian sigma) as fractions of the image diagonal: 1, 2 and 4 px on a
#: 481x321 BSDS image, the three scales of the Pb detector (Martin et al., PAMI 2004)
SCALES = (1 / 580, 2 / 580, 4 / 580)
#: surround suppression (non-classical receptive field inhibition, Grigorescu, Petkov & Westenberg,
#: IEEE TIP 2003): the contour map minus SUPPRESSION times its Gaussian average over SURROUND times
#: the largest scale, so edges in texture (grass, fur, foliage) fade and isolated contours stay
#: (decision 0008, sixth round)
SURROUND = 4.0
SUPPRESSION = 1.0
#: compact watershed: contour strength (Lab units) that one atom width of distance from the seed
#: weighs, so atoms stay compact in flat areas and follow edges elsewhere, at any image size
COMPACTNESS = 0.4


@dataclass
class AtomGraph:
    """Atoms of one image and their adjacency.

    labels:   (H, W) int32 atom ids 0..n-1 (each atom a connected set of pixels).
    image:    (H, W, 3) uint8 RGB image the atoms were computed on.
    sizes:    (n,) pixel counts; lab_sum (n, 3) summed CIELAB colour.
    edges:    (m, 2) int32 pairs i < j of adjacent atoms; edge_strength (m,) summed contour
              strength (`contour_strength`) along the common boundary; edge_length (m,) its
              length in pixel pairs.
    boundary: (H, W) float32 contour strength (`contour_strength`) the atoms were grown on.
    """

    labels: np.ndarray
    image: np.ndarray
    sizes: np.ndarray
    lab_sum: np.ndarray
    edges: np.ndarray
    edge_strength: np.ndarray
    edge_length: np.ndarray
    boundary: np.ndarray

    @property
    def n(self) -> int:
        return len(self.sizes)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.labels.shape[0]), int(self.labels.shape[1])


def atom_map(graph: AtomGraph, shape: tuple[int, int]) -> np.ndarray:
    """The atom ids resized to `shape` by nearest neighbour (the identity at the atoms' size)."""
    labels = graph.labels
    if labels.shape == tuple(shape):
        return labels
    rows = np.minimum((np.arange(shape[0]) * labels.shape[0]) // shape[0], labels.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * labels.shape[1]) // shape[1], labels.shape[1] - 1)
    return labels[np.ix_(rows, cols)]


def contour_strength(lab: np.ndarray) -> np.ndarray:
    """The scale-normalised Lab gradient (`gradient_strength`) less its surround: where
    edges are dense (texture) the map fades, an isolated contour keeps most of its height."""
    gradient = gradient_strength(lab)
    surround = ndimage.gaussian_filter(gradient, SURROUND * SCALES[-1] * float(np.hypot(*lab.shape[:2])))
    return np.maximum(gradient - SUPPRESSION * surround, 0.0)


def gradient_strength(lab: np.ndarray) -> np.ndarray:
    """Mean over SCALES of the scale-normalised Lab gradient magnitude (Lab units).

    sigma * |grad G_sigma * I| of a step edge of height c peaks at c / sqrt(2 pi) whatever
    sigma, so the scales are comparable and thresholds read as colour contrasts.
    """
    diag = float(np.hypot(*lab.shape[:2]))
    total = np.zeros(lab.shape[:2], dtype=np.float32)
    for fraction in SCALES:
        sigma = max(0.7, fraction * diag)
        energy = np.zeros_like(total)
        for c in range(3):
            for order in ((1, 0), (0, 1)):
                energy += ndimage.gaussian_filter(lab[..., c], sigma, order=order) ** 2
        total += sigma * np.sqrt(energy)
    return total / len(SCALES)


def contour_atoms(image: np.ndarray, count: int) -> AtomGraph:
    """About `count` watershed basins of the contour-strength map of an RGB image, grown from
    a regular grid of seeds (compact watershed, Neubert & Protzel, ICPR 2014), and their graph."""
    lab = rgb2lab(image).astype(np.float32)
    boundary = contour_strength(lab)
    width = np.sqrt(boundary.size / max(count, 1))
    labels = watershed(boundary, markers=count, compactness=COMPACTNESS / width).astype(np.int32) - 1
    return atom_graph(labels, boundary, lab, image)


def atom_graph(labels: np.ndarray, boundary: np.ndarray, lab: np.ndarray,
               image: np.ndarray) -> AtomGraph:
    """The adjacency graph of an atom map (ids 0..n-1, each connected) with the contour
    strength of its edges and the colours of its atoms."""
    n = int(labels.max()) + 1
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=n).astype(np.float64)
    lab_sum = np.stack([np.bincount(flat, lab[..., c].ravel(), n) for c in range(3)], axis=1)
    a, b, s = [], [], []
    for first, second in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                          ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        la, lb = labels[first], labels[second]
        differ = la != lb
        a.append(la[differ])
        b.append(lb[differ])
        s.append(np.maximum(boundary[first][differ], boundary[second][differ]))
    a, b, s = np.concatenate(a), np.concatenate(b), np.concatenate(s)
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    keys, inverse = np.unique(lo * n + hi, return_inverse=True)
    strength = np.bincount(inverse, s.astype(np.float64), len(keys))
    length = np.bincount(inverse, minlength=len(keys)).astype(np.float64)
    edges = np.stack(np.divmod(keys, n), axis=1).astype(np.int32)
    return AtomGraph(labels, image, sizes, lab_sum, edges, strength, length, boundary.astype(np.float32))
