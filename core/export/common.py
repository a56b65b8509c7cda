"""What every exporter shares: the images to export, the category mapping, the report, publishing."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from core.atomic_io import atomic_write_bytes, fsync_folder
from core.export import ExportError
from core.export.polygons import polygons_from_rings
from core.export.regions import ExportImage, export_image
from core.jobs import CancelToken, Progress, check_cancel, report
from core.project import AnnotationFileError, Category, Project
from core.tree import SegmentTree

AGNOSTIC = Category(1, "object", (220, 220, 220), True, "object")


@dataclass
class ExportItem:
    """One image to export; `load` returns its tree (called once, when the image is exported).

    `path` is the image file (file names are made relative to an image root from it, and images
    are copied from it); `kept_ids` maps a node to the annotation id an import gave its region,
    written back while the region is still exactly that node.
    """

    image_id: int
    file_name: str
    load: Callable[[], SegmentTree]
    crowd: tuple[int, ...] = ()
    path: Optional[Path] = None
    kept_ids: dict[int, int] = field(default_factory=dict)
    kept_file_name: str = ""


@dataclass
class ExportSource:
    """What to export: the images and the categories they are labelled with."""

    items: list[ExportItem]
    categories: list[Category]
    skipped: list[str] = field(default_factory=list)      # images left out before exporting


class AnnotationIds:
    """Annotation ids: an imported region keeps its id, others get ids above every kept one.

    A kept id already used (ids of panoptic segments repeat across images) is replaced by a
    fresh one, so ids stay unique in the file.
    """

    def __init__(self, items: Sequence[ExportItem], per_image: bool = False) -> None:
        self.per_image = per_image
        kept = [i for item in items for i in item.kept_ids.values()]
        self._fresh = max(kept, default=0) + 1
        self._used: set[int] = set()

    def start_image(self, item_kept: dict[int, int]) -> None:
        if self.per_image:
            self._used = set()
            self._fresh = max(item_kept.values(), default=0) + 1

    def take(self, node_ids: Sequence[int], kept: dict[int, int], limit: int = 2 ** 53) -> int:
        """The id of a region made of `node_ids` (its kept id when it is exactly one imported node)."""
        if len(node_ids) == 1 and node_ids[0] in kept and kept[node_ids[0]] not in self._used \
                and kept[node_ids[0]] <= limit:
            value = kept[node_ids[0]]
        else:
            while self._fresh in self._used:
                self._fresh += 1
            value = self._fresh
            if value > limit:
                raise ExportError(f"annotation ids ran past {limit}")
        self._used.add(value)
        return value


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
    unreadable: int = 0     # images skipped because their annotation file was damaged or refused (a failure)

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


def project_source(project: Project) -> ExportSource:
    """Every annotated image of a project, with its path, crowd regions and imported ids."""
    source = ExportSource([], list(project.categories))
    folder = project.folder.absolute()
    for entry in project.images.values():
        if not project.has_tree(entry.id):
            source.skipped.append(f"image {entry.path!r} has no annotations yet")
            continue
        path = Path(os.path.normpath(folder / entry.path))
        source.items.append(ExportItem(entry.id, entry.path, _loader(project, entry.id), tuple(entry.crowd),
                                       path, dict(entry.coco_ids), entry.coco_file_name))
    return source


def _loader(project: Project, image_id: int) -> Callable[[], SegmentTree]:
    def load() -> SegmentTree:
        saved = project.load_tree(image_id)
        if saved is None:
            raise ExportError(f"the annotation file of image {project.images[image_id].path!r} vanished")
        return saved.tree
    return load


def with_suggestions(source: ExportSource) -> ExportSource:
    """The same images, each tree's shown unlabelled regions taking their label suggestion
    (on the loaded copy only, never saved)."""
    def accepting(load: Callable[[], SegmentTree]) -> Callable[[], SegmentTree]:
        def load_accepted() -> SegmentTree:
            tree = load()
            tree.accept_suggestions(tree.frontier())
            return tree
        return load_accepted
    items = [replace(item, load=accepting(item.load)) for item in source.items]
    return ExportSource(items, source.categories, list(source.skipped))


def single_items(trees: Iterable[tuple[str, SegmentTree]], paths: Sequence[Optional[Path]] = ()) -> list[ExportItem]:
    """Items for trees held in memory (no project), image ids from 1; `paths` are their image files."""
    paths = list(paths)
    return [ExportItem(i, name, (lambda t=tree: t), path=paths[i - 1] if i <= len(paths) else None)
            for i, (name, tree) in enumerate(trees, start=1)]


def iter_images(items: Sequence[ExportItem], categories: CategoryMap, merge: set[int],
                report_to: ExportReport, progress: Optional[Progress] = None,
                cancel: Optional[CancelToken] = None,
                stage: str = "exporting") -> Iterator[tuple[ExportItem, ExportImage]]:
    """Each item with its export regions; images whose annotation file is damaged or refused are skipped and reported."""
    for n, item in enumerate(items):
        check_cancel(cancel)
        report(progress, stage, n / max(1, len(items)))
        try:
            tree = item.load()
        except AnnotationFileError as exc:
            report_to.skipped.append(str(exc))
            report_to.unreadable += 1
            continue
        image = export_image(tree, item.image_id, item.file_name, categories, merge, item.crowd)
        if image.empty:
            report_to.skipped.append(f"{image.empty} regions of {item.file_name!r} vanish at the image size")
        yield item, image
    report(progress, stage, 1.0)


def region_polygons(image: ExportImage, index: int, rings: list, tolerance: float, min_part_area: float,
                    report_to: ExportReport) -> Optional[list[list[float]]]:
    """A region's traced polygons (what they lose counted in the report); None, reported, when none is left."""
    traced = polygons_from_rings(rings, tolerance, min_part_area)
    report_to.holes_lost += traced.holes_lost
    report_to.parts_dropped += traced.parts_dropped
    if not traced.rings:
        report_to.skipped.append(f"a {image.regions[index].area}-pixel region of {image.file_name!r} left no polygon")
        return None
    return traced.rings


def publish(path: Path, data: bytes, check: Callable[[Path], None], move: bool = True) -> None:
    """Write `data` next to `path` as `<name>.unverified`, run `check` on it, then move it into place
    (or leave that to the caller, with `move=False`, who publishes other files first)."""
    path = Path(path)
    pending = path.with_name(path.name + ".unverified")
    atomic_write_bytes(pending, data)
    try:
        check(pending)
    except ExportError as exc:
        raise ExportError(f"{exc} (the unverified file was kept as {pending})") from exc
    if move:
        os.replace(pending, path)
        fsync_folder(path.parent)
