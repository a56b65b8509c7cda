"""How well label suggestions carry a few labelled CamVid frames to the rest of the drive.

K frames spread over the sequence are labelled as an annotator would (each shown region with
the majority ground-truth class of its pixels), suggestions are made for the other frames, and
their shown regions are scored against the ground truth: mIoU and pixel accuracy of the
suggested labels, next to the oracle (each region its majority class: the segmentation's own
ceiling) and a position prior (each region the class most frequent at its pixel positions in
the labelled frames: no features); the share of regions whose suggestion is right (actions
saved) and precision against coverage above a confidence (the bulk-accept curve).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from core.camvid import CLASSES, VOID, CamvidFrame, ClassScores, class_scores, confusion, region_majority
from core.descriptors import token_cells
from core.export.regions import upsample_nearest
from core.image_io import load_image
from core.jobs import Progress, report
from core.suggest import Suggester
from core.tree import History, SegmentTree

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
PRIOR_GRID = (60, 80)         # pixel positions are pooled into this many cells for the prior


@dataclass
class FrameTree:
    """A segmented frame: its tree and its ground truth at the tree's resolution."""

    name: str
    tree: SegmentTree
    truth: np.ndarray


@dataclass
class SuggestionScores:
    """The scores at one number of labelled frames."""

    labelled: int
    suggested: ClassScores
    prior: ClassScores
    oracle: ClassScores
    regions: int                  # shown regions of the unlabelled frames with a non-void majority
    right: float                  # share of them whose suggestion is their majority class
    prior_right: float
    curve: list[tuple[float, float, float]] = field(default_factory=list)  # (threshold, precision, coverage)
    seconds: float = 0.0          # training and suggesting, all unlabelled frames


def segment_frames(frames: Sequence[CamvidFrame], segment: Callable[[np.ndarray], SegmentTree],
                   progress: Optional[Progress] = None) -> list[FrameTree]:
    """Segment every frame (trees with descriptors) and bring its labels to the tree's size."""
    out = []
    for n, frame in enumerate(frames):
        report(progress, f"segmenting {frame.name}", n / len(frames))
        tree = segment(load_image(frame.image))
        out.append(FrameTree(frame.name, tree, _resized_nearest(frame.labels(), tree.shape)))
    report(progress, "segmenting", 1.0)
    return out


def _resized_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return upsample_nearest(labels, shape) if labels.shape != tuple(shape) else labels


def spread(n: int, k: int) -> list[int]:
    """k frame indices spread over a sequence of n: the middles of k equal stretches."""
    return sorted({min(n - 1, (2 * i + 1) * n // (2 * k)) for i in range(min(k, n))})


def evaluate_suggestions(frames: Sequence[FrameTree],
                         labelled_counts: Sequence[int] = (1, 3, 10)) -> list[SuggestionScores]:
    """Score suggestions for each number of labelled frames; the trees are left unlabelled."""
    return [_evaluate_at(frames, k) for k in labelled_counts]


def _evaluate_at(frames: Sequence[FrameTree], k: int) -> SuggestionScores:
    chosen = spread(len(frames), k)
    histories = [_label_like_an_annotator(frames[i]) for i in chosen]
    try:
        started = time.perf_counter()
        suggester = Suggester()
        for i, frame in enumerate(frames):
            suggester.update(i, frame.tree)
        suggester.fit()
        others = [f for i, f in enumerate(frames) if i not in chosen]
        for frame in others:
            suggester.suggest(frame.tree)
        seconds = time.perf_counter() - started
        prior = _position_prior([frames[i] for i in chosen])
        return _score(others, prior, len(chosen), seconds)
    finally:
        for history in histories:
            while history.undo():
                pass


def _label_like_an_annotator(frame: FrameTree) -> History:
    """Give each shown region its majority class (category = class id + 1); undoable."""
    tree = frame.tree
    regions, front = tree.frontier_labels()
    majority = region_majority(regions, frame.truth)
    history = History(tree)
    for cls in np.unique(majority):
        if cls != VOID:
            history.push(tree.label([front[i] for i in np.flatnonzero(majority == cls)], int(cls) + 1))
    return history


def _position_prior(labelled: Sequence[FrameTree]) -> np.ndarray:
    """(PRIOR_GRID cells, classes) counts of the annotator's labels at each position."""
    counts = np.zeros((PRIOR_GRID[0] * PRIOR_GRID[1], VOID), dtype=np.float64)
    for frame in labelled:
        given = _given_labels(frame.tree).ravel()
        cells = token_cells(frame.tree.shape, PRIOR_GRID)
        keep = given != VOID
        np.add.at(counts, (cells[keep], given[keep]), 1.0)
    return counts


def _given_labels(tree: SegmentTree) -> np.ndarray:
    """The class-id map the tree's labels give (VOID where unlabelled)."""
    regions, front = tree.frontier_labels()
    per_region = np.array([(tree.effective_category(n) or VOID + 1) - 1 for n in front])
    return per_region[regions]


def _score(frames: Sequence[FrameTree], prior: np.ndarray, k: int, seconds: float) -> SuggestionScores:
    matrices = {"suggested": 0, "prior": 0, "oracle": 0}
    totals = np.zeros(VOID, dtype=np.int64)
    right, prior_right, confidence = [], [], []
    for frame in frames:
        regions, front = frame.tree.frontier_labels()
        truth = frame.truth
        majority = region_majority(regions, truth)
        suggested = np.array([_suggested_class(frame.tree, n) for n in front])
        guessed, _ = _prior_guess(prior, regions, len(front))
        for key, per_region in (("suggested", suggested), ("prior", guessed), ("oracle", majority)):
            matrices[key] = matrices[key] + confusion(per_region[regions], truth)
        totals += np.bincount(truth[truth != VOID], minlength=VOID)
        scored = majority != VOID
        right.append(suggested[scored] == majority[scored])
        prior_right.append(guessed[scored] == majority[scored])
        confidence.append(np.array([_confidence(frame.tree, n) for n in front])[scored])
    right_all, conf_all = np.concatenate(right), np.concatenate(confidence)
    curve = []
    for threshold in THRESHOLDS:
        taken = conf_all >= threshold
        precision = float(right_all[taken].mean()) if taken.any() else float("nan")
        curve.append((threshold, precision, float(taken.mean())))
    return SuggestionScores(k, class_scores(matrices["suggested"], totals), class_scores(matrices["prior"], totals),
                            class_scores(matrices["oracle"], totals), len(right_all), float(right_all.mean()),
                            float(np.concatenate(prior_right).mean()), curve, seconds)


def _suggested_class(tree: SegmentTree, node_id: int) -> int:
    suggestion = tree.live_suggestion(node_id)
    return VOID if suggestion is None else suggestion.category - 1


def _confidence(tree: SegmentTree, node_id: int) -> float:
    suggestion = tree.live_suggestion(node_id)
    return -1.0 if suggestion is None else suggestion.confidence


def _prior_guess(prior: np.ndarray, regions: np.ndarray, n_regions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per region: the class the prior's counts favour over its pixels, and that share."""
    cells = token_cells(regions.shape, PRIOR_GRID)
    n_cells = PRIOR_GRID[0] * PRIOR_GRID[1]
    cover = np.bincount(regions.ravel().astype(np.int64) * n_cells + cells,
                        minlength=n_regions * n_cells).reshape(n_regions, n_cells)
    votes = cover @ prior
    total = votes.sum(axis=1)
    guess = np.where(total > 0, votes.argmax(axis=1), VOID)
    return guess, np.where(total > 0, votes.max(axis=1) / np.maximum(total, 1), 0.0)


def format_table(results: Sequence[SuggestionScores], title: str) -> str:
    """The evaluation as two plain-text tables: scores per K, then the bulk-accept curve."""
    lines = [title, "",
             f"{'K':>3} {'labels from':<12} {'mIoU':>6} {'/oracle':>7} {'pix acc':>7} {'regions right':>13}"]
    for r in results:
        for name, scores, right in (("suggestions", r.suggested, r.right), ("position", r.prior, r.prior_right),
                                    ("oracle", r.oracle, 1.0)):
            lines.append(f"{r.labelled:>3} {name:<12} {scores.miou:6.3f} {scores.miou / r.oracle.miou:7.2f} "
                         f"{scores.pixel_accuracy:7.3f} {right:13.3f}")
    lines += ["", "bulk accept: precision / coverage of suggestions at or above a confidence",
              f"{'K':>3} {'regions':>7} " + " ".join(f"{'>= ' + format(t, '.2f'):>11}" for t in THRESHOLDS)
              + f" {'fit+suggest':>11}"]
    for r in results:
        cells = " ".join(f"{p:5.3f}/{c:5.3f}" for _, p, c in r.curve)
        lines.append(f"{r.labelled:>3} {r.regions:>7} {cells} {r.seconds:10.2f}s")
    lines += ["", "per-class IoU of the suggestions (oracle in brackets), K = " + str(results[-1].labelled),
              "  " + ", ".join(f"{name} {s:.2f} ({o:.2f})" for name, s, o in
                               zip(CLASSES, results[-1].suggested.iou, results[-1].oracle.iou))]
    return "\n".join(lines)
