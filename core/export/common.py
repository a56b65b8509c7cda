"""What every exporter shares: the images to export, the category mapping, the report, publishing."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from core.atomic_io import atomic_write_bytes, fsync_folder
from core.export import ExportError
from core.export.regions import ExportImage, export_image
from core.jobs import CancelToken, Progress, check_cancel, report
from core.project import Category, DamagedFileError, Project
from core.tree import SegmentTree

AGNOSTIC = Category(1, "object", (220, 220, 220), True, "object")


@dataclass
class ExportItem:
    """One image to export; `load` returns its tree (called once, when the image is exported)."""

    image_id: int
    file_name: str
    load: Callable[[], SegmentTree]
    crowd: tuple[int, ...] = ()


@dataclass
class ExportReport:
    """What an export wrote and what it had to leave out (shown to the user, printed by the CLI)."""

    path: Path
    images: int = 0
    annotations: int = 0
    skipped: list[str] = field(default_factory=list)
    holes_lost: int = 0
    parts_dropped: int = 0
    polygon_iou: Optional[tuple[float, float]] = None      # (min, mean) over annotations

    def lines(self) -> list[str]:
        out = [f"wrote {self.path}: {self.images} images, {self.annotations} annotations"]
        if self.holes_lost or self.parts_dropped:
            out.append(f"polygons lost {self.holes_lost} holes and dropped {self.parts_dropped} tiny parts")
        if self.polygon_iou is not None:
            out.append(f"polygon IoU with the source masks: min {self.polygon_iou[0]:.3f}, "
                       f"mean {self.polygon_iou[1]:.3f}")
        out.extend(f"skipped: {s}" for s in self.skipped)
        return out


class CategoryMap:
    """Maps a tree's effective category to the exported category id (or None: not exported)."""

    def __init__(self, categories: Sequence[Category], include_unlabelled: bool = False,
                 class_agnostic: bool = False) -> None:
        self.class_agnostic = class_agnostic
        if class_agnostic:
            self.categories = [AGNOSTIC]
            self.unlabelled: Optional[int] = AGNOSTIC.id
        else:
            self.categories = sorted(categories, key=lambda c: c.id)
            self.unlabelled = None
            if include_unlabelled:
                new_id = max((c.id for c in self.categories), default=0) + 1
                self.categories.append(Category(new_id, "unlabelled", (200, 200, 200), True, "unlabelled"))
                self.unlabelled = new_id
        if any(c.id < 1 for c in self.categories):
            raise ExportError("category ids must be 1 or more (COCO has no category 0)")
        self._known = {c.id for c in self.categories}
        self.unknown: set[int] = set()

    def __call__(self, category: Optional[int]) -> Optional[int]:
        if category is None:
            return self.unlabelled
        if self.class_agnostic:
            return AGNOSTIC.id
        if category not in self._known:
            self.unknown.add(category)
            return None
        return category

    def stuff_ids(self) -> set[int]:
        return {c.id for c in self.categories if not c.isthing}


def project_items(project: Project, report_to: ExportReport, include_suggested: bool = False) -> list[ExportItem]:
    """The project's images that have an annotation file (others are listed as skipped); with
    `include_suggested`, shown regions without a label take their live label suggestion."""
    items = []
    for entry in project.images.values():
        if not project.has_tree(entry.id):
            report_to.skipped.append(f"image {entry.path!r} has no annotations yet")
            continue
        items.append(ExportItem(entry.id, entry.path, _loader(project, entry.id, include_suggested),
                                tuple(entry.crowd)))
    return items


def _loader(project: Project, image_id: int, include_suggested: bool) -> Callable[[], SegmentTree]:
    def load() -> SegmentTree:
        saved = project.load_tree(image_id)
        if saved is None:
            raise ExportError(f"the annotation file of image {project.images[image_id].path!r} vanished")
        if include_suggested:
            saved.tree.accept_suggestions(saved.tree.frontier())     # this copy only, never saved
        return saved.tree
    return load


def single_items(trees: Iterable[tuple[str, SegmentTree]]) -> list[ExportItem]:
    """Items for trees held in memory (no project), image ids from 1."""
    return [ExportItem(i, name, (lambda t=tree: t)) for i, (name, tree) in enumerate(trees, start=1)]


def iter_images(items: Sequence[ExportItem], categories: CategoryMap, merge: set[int],
                report_to: ExportReport, progress: Optional[Progress] = None,
                cancel: Optional[CancelToken] = None, stage: str = "exporting") -> Iterator[ExportImage]:
    """Each item's export regions; images with a damaged annotation file are skipped and reported."""
    for n, item in enumerate(items):
        check_cancel(cancel)
        report(progress, stage, n / max(1, len(items)))
        try:
            tree = item.load()
        except DamagedFileError as exc:
            report_to.skipped.append(str(exc))
            continue
        image = export_image(tree, item.image_id, item.file_name, categories, merge, item.crowd)
        if image.empty:
            report_to.skipped.append(f"{image.empty} regions of {item.file_name!r} vanish at the image size")
        yield image
    report(progress, stage, 1.0)


def publish(path: Path, data: bytes, check: Callable[[Path], None]) -> None:
    """Write `data` next to `path`, run `check` on it, and only then move it into place."""
    path = Path(path)
    pending = path.with_name(path.name + ".unverified")
    atomic_write_bytes(pending, data)
    try:
        check(pending)
    except ExportError as exc:
        raise ExportError(f"{exc}\n(the unverified file was kept as {pending})") from exc
    os.replace(pending, path)
    fsync_folder(path.parent)
