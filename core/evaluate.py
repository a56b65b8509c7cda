"""Score segmentation hierarchies: BSDS500 region benchmarks (Arbelaez et al. 2011) and the
CamVid oracle labelling.

Each image's hierarchy is cut at every granularity of a grid; every cut is scored against
all human segmentations (core.metrics.region_scores). As in the BSDS benchmark code
(`collect_eval_reg.m`), ODS picks one granularity for the whole dataset: covering pools
its pixel counts over images, PRI and VoI average per-image values; OIS picks the best
granularity per image. Higher is better for covering and PRI, lower for VoI.

On CamVid, `camvid_cuts` gives each frame's region maps at every granularity (reused by the
label-suggestion evaluation) and `oracle_curve` scores the best any labelling of those
regions can do: each region its majority class.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import scipy.io

from core.errors import CutTreeError
from core.jobs import CancelToken, Progress, check_cancel, report
from core.metrics import RegionScores, region_scores

if TYPE_CHECKING:
    from core.camvid import CamvidFrame, ClassScores

#: labels_at(granularity) -> (H, W) segment ids of one image's hierarchy at that granularity
LabelsAt = Callable[[float], np.ndarray]


@dataclass
class BsdsImage:
    name: str
    image: Path
    truth: Path


def bsds_images(data_dir: str | Path, split: str) -> list[BsdsImage]:
    """The images of a BSDS500 split that have a groundTruth .mat file, sorted by name."""
    root = Path(data_dir)
    images, truths = root / "images" / split, root / "groundTruth" / split
    for folder in (images, truths):
        if not folder.is_dir():
            raise CutTreeError(f"{folder} is not a folder: expected a BSDS500 layout "
                               f"images/{split}/*.jpg and groundTruth/{split}/*.mat under {root}")
    items = [BsdsImage(p.stem, p, truths / f"{p.stem}.mat") for p in sorted(images.glob("*.jpg"))]
    items = [item for item in items if item.truth.is_file()]
    if not items:
        raise CutTreeError(f"no image in {images} has a ground-truth file in {truths}")
    return items


def load_human_segmentations(path: str | Path) -> list[np.ndarray]:
    """The label maps of every annotator in a BSDS groundTruth .mat file."""
    try:
        cells = scipy.io.loadmat(str(path))["groundTruth"]
        humans = [np.asarray(cells[0, k]["Segmentation"][0, 0]) for k in range(cells.shape[1])]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise CutTreeError(f"{path} is not a BSDS ground-truth file "
                           f"(expected a 1xK cell 'groundTruth' with 'Segmentation'): {exc}") from exc
    if not humans or any(h.ndim != 2 for h in humans):
        raise CutTreeError(f"{path} holds no 2-D human segmentation")
    return humans


@dataclass
class ImageScores:
    """Scores of one image's hierarchy at each granularity of the grid."""

    name: str
    covering_hits: np.ndarray
    covering_total: np.ndarray
    pri: np.ndarray
    voi: np.ndarray

    @property
    def covering(self) -> np.ndarray:
        return self.covering_hits / self.covering_total


def score_hierarchy(name: str, labels_at: LabelsAt, humans: list[np.ndarray],
                    granularities: Sequence[float]) -> ImageScores:
    """Region scores of the hierarchy cut at each granularity (equal cuts scored once)."""
    seen: dict[bytes, RegionScores] = {}
    scores = []
    for g in granularities:
        labels = resize_labels(labels_at(g), humans[0].shape)
        key = labels.tobytes()
        if key not in seen:
            seen[key] = region_scores(labels, humans)
        scores.append(seen[key])
    return ImageScores(name, *(np.array([getattr(s, f) for s in scores])
                               for f in ("covering_hits", "covering_total", "pri", "voi")))


def resize_labels(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to the ground truth's shape."""
    if labels.shape == shape:
        return labels
    rows = np.minimum((np.arange(shape[0]) * labels.shape[0]) // shape[0], labels.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * labels.shape[1]) // shape[1], labels.shape[1] - 1)
    return labels[np.ix_(rows, cols)]


@dataclass
class MetricSummary:
    ods: float
    ods_granularity: float
    ois: float
    untuned: float = float("nan")  # the dataset score at the settings' own granularity


@dataclass
class Summary:
    covering: MetricSummary
    pri: MetricSummary
    voi: MetricSummary
    n_images: int


def summarise(images: list[ImageScores], granularities: Sequence[float],
              default: Optional[float] = None) -> Summary:
    """ODS and OIS of each measure over the images, as the BSDS benchmark collects them.

    With `default` (a granularity of the grid), each measure also gets its value there: what
    a user gets without tuning.
    """
    if not images:
        raise CutTreeError("no image was scored")
    grid = np.asarray(granularities, dtype=float)
    hits = np.array([s.covering_hits for s in images])
    total = np.array([s.covering_total for s in images])
    pooled = hits.sum(0) / total.sum(0)
    best = np.argmax(hits / total, axis=1)
    rows = np.arange(len(images))
    at = None if default is None else int(np.argmin(np.abs(grid - default)))
    covering = MetricSummary(float(pooled.max()), float(grid[np.argmax(pooled)]),
                             float(hits[rows, best].sum() / total[rows, best].sum()),
                             _at(pooled, at))
    pri = _mean_metric(np.array([s.pri for s in images]), grid, np.argmax, np.max, at)
    voi = _mean_metric(np.array([s.voi for s in images]), grid, np.argmin, np.min, at)
    return Summary(covering, pri, voi, len(images))


def _at(values: np.ndarray, index: Optional[int]) -> float:
    return float("nan") if index is None else float(values[index])


def _mean_metric(values: np.ndarray, grid: np.ndarray, arg, best, at: Optional[int]) -> MetricSummary:
    mean = values.mean(0)
    i = int(arg(mean))
    return MetricSummary(float(mean[i]), float(grid[i]), float(best(values, axis=1).mean()), _at(mean, at))


def format_table(summary: Summary, title: str = "") -> str:
    """A plain-text table: measure x (ODS, granularity at ODS, OIS, untuned), and the image count."""
    lines = [title] if title else []
    lines.append(f"{'measure':<22}{'ODS':>8}{'at g':>8}{'OIS':>8}{'untuned':>9}")
    for label, m in (("covering (higher)", summary.covering), ("PRI (higher)", summary.pri),
                     ("VoI (lower)", summary.voi)):
        lines.append(f"{label:<22}{m.ods:>8.3f}{m.ods_granularity:>8.3f}{m.ois:>8.3f}{m.untuned:>9.3f}")
    lines.append(f"images: {summary.n_images}")
    return "\n".join(lines)


def default_granularities(tau_max: float, steps: int = 40) -> list[float]:
    """Evenly spaced granularities in (0, tau_max]."""
    return [float(g) for g in np.linspace(tau_max / steps, tau_max, steps)]


def evaluate_bsds(items: Sequence[BsdsImage], hierarchy: Callable[[np.ndarray], LabelsAt],
                  granularities: Sequence[float], progress: Optional[Progress] = None,
                  cancel: Optional[CancelToken] = None,
                  default: Optional[float] = None) -> tuple[Summary, list[ImageScores]]:
    """Segment every image with `hierarchy(image) -> labels_at` and score it."""
    from core.image_io import load_image
    scored = []
    for index, item in enumerate(items):
        check_cancel(cancel)
        report(progress, f"image {index + 1}/{len(items)}: {item.name}", index / len(items))
        humans = load_human_segmentations(item.truth)
        labels_at = hierarchy(load_image(item.image))
        scored.append(score_hierarchy(item.name, labels_at, humans, granularities))
    report(progress, "done", 1.0)
    return summarise(scored, granularities, default), scored


@dataclass
class FrameCuts:
    """One CamVid frame's class map and its hierarchy's region map at each granularity."""

    name: str
    truth: np.ndarray
    cuts: list[np.ndarray]


def camvid_cuts(frames: Sequence["CamvidFrame"], hierarchy: Callable[[np.ndarray], LabelsAt],
                granularities: Sequence[float], progress: Optional[Progress] = None,
                cancel: Optional[CancelToken] = None) -> Iterator[FrameCuts]:
    """Segment each frame once and yield its region maps at every granularity (at the label
    map's size), one frame at a time so that memory stays bounded."""
    from core.image_io import load_image
    for index, frame in enumerate(frames):
        check_cancel(cancel)
        report(progress, f"frame {index + 1}/{len(frames)}: {frame.name}", index / len(frames))
        truth = frame.labels()
        labels_at = hierarchy(load_image(frame.image))
        yield FrameCuts(frame.name, truth, [resize_labels(labels_at(g), truth.shape) for g in granularities])
    report(progress, "done", 1.0)


@dataclass
class OracleCurve:
    """Oracle labelling (each region its majority class) at each granularity of a grid."""

    granularities: list[float]
    regions_per_frame: np.ndarray        # mean number of regions per frame at each granularity
    scores: list["ClassScores"]          # summed over frames
    n_frames: int

    def best_within(self, max_regions: float) -> int:
        """Index of the granularity with the best mIoU among those with at most
        `max_regions` regions per frame (-1 if none)."""
        ok = [i for i, r in enumerate(self.regions_per_frame) if r <= max_regions]
        return max(ok, key=lambda i: self.scores[i].miou) if ok else -1


class OracleAccumulator:
    """Sums the frames' oracle confusions (core.camvid.oracle_confusion) at each granularity."""

    def __init__(self, granularities: Sequence[float]) -> None:
        from core.camvid import VOID
        self.granularities = list(granularities)
        self.matrices = np.zeros((len(self.granularities), VOID, VOID), dtype=np.int64)
        self.totals = np.zeros(VOID, dtype=np.int64)
        self.regions = np.zeros(len(self.granularities))
        self.n = 0

    def add(self, frame: FrameCuts) -> None:
        from core.camvid import oracle_confusion
        for i, labels in enumerate(frame.cuts):
            matrix, totals = oracle_confusion(labels, frame.truth)
            self.matrices[i] += matrix
            self.regions[i] += len(np.unique(labels))
        self.totals += totals
        self.n += 1

    def curve(self) -> OracleCurve:
        from core.camvid import class_scores
        if not self.n:
            raise CutTreeError("no frame was scored")
        return OracleCurve(self.granularities, self.regions / self.n,
                           [class_scores(m, self.totals) for m in self.matrices], self.n)


def oracle_curve(cuts: Iterable[FrameCuts], granularities: Sequence[float]) -> OracleCurve:
    """The oracle curve of a sequence of frames' cuts."""
    acc = OracleAccumulator(granularities)
    for frame in cuts:
        acc.add(frame)
    return acc.curve()


def format_oracle(curve: OracleCurve, default: float, max_regions: float = 60) -> str:
    """The curve (granularity, regions per frame, oracle mIoU, pixel accuracy), then per-class
    IoU at the default granularity and at the best one within `max_regions` regions."""
    from core.camvid import CLASSES
    lines = [f"{'granularity':>11}{'regions/frame':>15}{'oracle mIoU':>13}{'pixel acc':>11}"]
    for g, r, s in zip(curve.granularities, curve.regions_per_frame, curve.scores):
        mark = "  <- default" if abs(g - default) < 1e-9 else ""
        lines.append(f"{g:>11.3f}{r:>15.1f}{s.miou:>13.3f}{s.pixel_accuracy:>11.3f}{mark}")
    at = int(np.argmin(np.abs(np.asarray(curve.granularities) - default)))
    columns = [("default", at)]
    best = curve.best_within(max_regions)
    if best >= 0:
        columns.append((f"best <= {max_regions:g}", best))
    lines.append("")
    lines.append(f"{'class IoU':<14}" + "".join(
        f"{f'{name} g={curve.granularities[i]:.2f}':>20}" for name, i in columns))
    for c, name in enumerate(CLASSES):
        lines.append(f"{name:<14}" + "".join(f"{curve.scores[i].iou[c]:>20.3f}" for _, i in columns))
    lines.append(f"{'mIoU':<14}" + "".join(f"{curve.scores[i].miou:>20.3f}" for _, i in columns))
    lines.append(f"{'regions/frame':<14}" + "".join(
        f"{curve.regions_per_frame[i]:>20.1f}" for _, i in columns))
    lines.append(f"frames: {curve.n_frames}")
    return "\n".join(lines)
