"""Segmentation quality measures for one image: region benchmarks and matched mIoU.

Region measures follow the BSDS500 benchmark of Arbelaez, Maire, Fowlkes and Malik,
"Contour Detection and Hierarchical Image Segmentation" (TPAMI 2011) and its MATLAB code
(`match_segmentations*.m`): segmentation covering of the human segmentations by the machine
one, probabilistic Rand index and variation of information (in bits, as the benchmark's
log2) averaged over the human segmentations.

The Hungarian-matched mIoU and pixel accuracy follow DiffCut/DiffSeg's protocol
(`tools/utils.py:hungarian_matching` in PaulCouairon/DiffCut, the same as google/diffseg's):
per-image optimal one-to-one matching of predicted clusters to classes, TP/FP/FN
accumulated over the dataset.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


def contingency(seg: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Pixel counts n[i, j] of (seg label i, gt label j), without empty rows or columns."""
    if seg.shape != gt.shape:
        raise ValueError(f"segmentation {seg.shape} and ground truth {gt.shape} differ in shape")
    s, g = _dense(seg.ravel()), _dense(gt.ravel())
    ns, ng = int(s.max()) + 1, int(g.max()) + 1
    n = np.bincount(s * ng + g, minlength=ns * ng).reshape(ns, ng)
    return n[n.any(1)][:, n.any(0)].astype(np.float64)


def _dense(labels: np.ndarray) -> np.ndarray:
    """Non-negative int64 labels (relabelled when negative or sparse)."""
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() > 4 * labels.size:
        labels = np.unique(labels, return_inverse=True)[1].ravel()
    return labels


def rand_index(n: np.ndarray) -> float:
    """Fraction of pixel pairs on which the two labelings agree (same/different segment)."""
    total = n.sum()
    pairs = total * (total - 1) / 2
    if pairs == 0:
        return 1.0
    disagree = ((n.sum(1) ** 2).sum() + (n.sum(0) ** 2).sum()) / 2 - (n ** 2).sum()
    return float(1 - disagree / pairs)


def variation_of_information(n: np.ndarray) -> float:
    """H(S) + H(G) - 2 I(S; G) in bits (Meila 2007)."""
    joint = n / n.sum()
    ps, pg = joint.sum(1), joint.sum(0)
    nz = joint > 0
    outer = np.outer(ps, pg)
    mutual = (joint[nz] * np.log2(joint[nz] / outer[nz])).sum()
    return float(_entropy(ps) + _entropy(pg) - 2 * mutual)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def covering_counts(n: np.ndarray) -> tuple[float, float]:
    """(sum over gt regions of |R| * best IoU with a segment, number of pixels).

    Their ratio is the covering of the ground truth by the segmentation, C(S -> G).
    """
    size_s = n.sum(1)[:, None]
    size_g = n.sum(0)[None, :]
    iou = n / (size_s + size_g - n)
    return float((size_g[0] * iou.max(0)).sum()), float(n.sum())


@dataclass
class RegionScores:
    """One segmentation against all human segmentations of an image."""

    covering_hits: float   # sum over humans and their regions of |R| * best IoU
    covering_total: float  # sum over humans of the number of pixels
    pri: float             # Rand index averaged over humans
    voi: float             # variation of information averaged over humans

    @property
    def covering(self) -> float:
        return self.covering_hits / self.covering_total


def region_scores(seg: np.ndarray, humans: list[np.ndarray]) -> RegionScores:
    """Covering, probabilistic Rand index and VoI of `seg` against every human map."""
    if not humans:
        raise ValueError("at least one human segmentation is needed")
    hits = total = ri = vi = 0.0
    for gt in humans:
        n = contingency(seg, gt)
        h, t = covering_counts(n)
        hits, total = hits + h, total + t
        ri += rand_index(n)
        vi += variation_of_information(n)
    return RegionScores(hits, total, ri / len(humans), vi / len(humans))


@dataclass
class MatchedIoU:
    """TP/FP/FN per class accumulated over images after per-image Hungarian matching."""

    n_classes: int
    tp: np.ndarray = field(init=False)
    fp: np.ndarray = field(init=False)
    fn: np.ndarray = field(init=False)
    labelled: int = 0

    def __post_init__(self) -> None:
        self.tp, self.fp, self.fn = (np.zeros(self.n_classes) for _ in range(3))

    def add(self, pred: np.ndarray, label: np.ndarray) -> None:
        """Match this image's clusters to classes and accumulate; labels outside [0, C) are ignored."""
        if pred.shape != label.shape:
            raise ValueError(f"prediction {pred.shape} and labels {label.shape} differ in shape")
        if pred.size and pred.min() < 0:
            raise ValueError("predicted cluster ids must be non-negative")
        hist = confusion(pred, label, self.n_classes)
        rows, cols = linear_sum_assignment(hist, maximize=True)
        matched = hist[rows, cols]
        self.tp[rows] += matched
        self.fn[rows] += hist[rows].sum(1) - matched
        self.fp[rows] += hist[:, cols].sum(0) - matched
        self.labelled += int(hist.sum())

    @property
    def iou(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.tp / (self.tp + self.fp + self.fn)

    @property
    def miou(self) -> float:
        return float(np.nanmean(self.iou))

    @property
    def pixel_accuracy(self) -> float:
        return float(self.tp.sum() / self.labelled) if self.labelled else float("nan")


def confusion(pred: np.ndarray, label: np.ndarray, n_classes: int) -> np.ndarray:
    """Class x cluster pixel counts, at least square; labels outside [0, n_classes) ignored."""
    pred = pred.ravel().astype(np.int64)
    label = label.ravel().astype(np.int64)
    columns = max(n_classes, int(pred.max()) + 1 if pred.size else 0)
    keep = (label >= 0) & (label < n_classes)
    flat = label[keep] * columns + pred[keep]
    return np.bincount(flat, minlength=n_classes * columns).reshape(n_classes, columns)
