"""CamVid (SegNet's 11-class protocol): frames, label maps and per-class region scores.

Shared by the oracle evaluation (how well a segmentation's regions can be labelled at best)
and the label-suggestion evaluation. Class ids as in SegNet (Badrinarayanan et al., PAMI
2017); id 11 is void and is ignored by every score.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import CutTreeError

CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign/symbol", "fence",
           "car", "pedestrian", "bicyclist")
VOID = 11


@dataclass
class CamvidFrame:
    name: str
    image: Path
    truth: Path

    def labels(self) -> np.ndarray:
        """The (H, W) class-id map of this frame (uint8; VOID where unlabelled)."""
        try:
            with Image.open(self.truth) as im:
                labels = np.asarray(im)
        except OSError as exc:
            raise CutTreeError(f"{self.truth}: not a readable label map: {exc}") from exc
        if labels.ndim != 2:
            raise CutTreeError(f"{self.truth}: expected a single-channel class-id map, "
                               f"got shape {labels.shape}")
        return np.where(labels <= VOID, labels, VOID).astype(np.uint8)


def camvid_frames(data_dir: str | Path, split: str = "val") -> list[CamvidFrame]:
    """The frames of a split that have a label map (`<split>/` and `<split>annot/`), by name.

    Names sort in time order within a sequence, so frames spread over the list are spread
    over the drive.
    """
    root = Path(data_dir)
    images, truths = root / split, root / f"{split}annot"
    for folder in (images, truths):
        if not folder.is_dir():
            raise CutTreeError(f"{folder} is not a folder: expected a CamVid layout "
                               f"{split}/*.png and {split}annot/*.png under {root}")
    frames = [CamvidFrame(p.stem, p, truths / p.name) for p in sorted(images.glob("*.png"))]
    frames = [f for f in frames if f.truth.is_file()]
    if not frames:
        raise CutTreeError(f"no frame in {images} has a label map in {truths}")
    return frames


def region_majority(regions: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each region id 0..max, the most frequent non-void class of its pixels (VOID if none)."""
    if regions.shape != truth.shape:
        raise CutTreeError(f"regions {regions.shape} and labels {truth.shape} differ in size")
    n = int(regions.max()) + 1
    keep = truth != VOID
    counts = np.zeros((n, VOID), dtype=np.int64)
    np.add.at(counts, (regions[keep].ravel(), truth[keep].ravel().astype(np.intp)), 1)
    return np.where(counts.sum(1) > 0, counts.argmax(1), VOID)


def confusion(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The 11×11 confusion matrix (rows truth, columns prediction) over non-void pixels.

    Predicted VOID (no label given) counts as wrong for the true class.
    """
    keep = truth != VOID
    t = truth[keep].astype(np.intp)
    p = predicted[keep].astype(np.intp)
    matrix = np.bincount(t * (VOID + 1) + p, minlength=VOID * (VOID + 1))
    return matrix.reshape(VOID, VOID + 1)[:, :VOID]


@dataclass
class ClassScores:
    """Per-class IoU, mean IoU and pixel accuracy of a summed confusion matrix."""

    iou: np.ndarray
    miou: float
    pixel_accuracy: float


def class_scores(matrix: np.ndarray, totals: np.ndarray | None = None) -> ClassScores:
    """IoU per class from a confusion matrix; `totals` (true pixels per class, including those
    predicted VOID) defaults to the matrix's row sums. Classes absent from the truth are NaN and
    left out of the mean."""
    matrix = np.asarray(matrix, dtype=np.float64)
    truth_pixels = matrix.sum(1) if totals is None else np.asarray(totals, dtype=np.float64)
    hits = np.diag(matrix)
    union = truth_pixels + matrix.sum(0) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(truth_pixels > 0, hits / union, np.nan)
    accuracy = float(hits.sum() / truth_pixels.sum()) if truth_pixels.sum() else float("nan")
    return ClassScores(iou, float(np.nanmean(iou)), accuracy)


def oracle_confusion(regions: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confusion of the oracle labelling (each region its majority class) and the true pixels
    per class: the ceiling of any labelling of these regions."""
    majority = region_majority(regions, truth)
    predicted = majority[regions]
    return confusion(predicted, truth), np.bincount(truth[truth != VOID], minlength=VOID)
