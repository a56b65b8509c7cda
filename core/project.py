"""A project folder: `project.json` (images, categories, settings) and one annotation file per image.

`project.json` is versioned (`schema_version`, with a migration hook per older version); images
are stored by path relative to the project folder, so the folder can be moved with its images.
Images that moved or vanished are listed in `Project.problems`, never fatal. An annotation file
that cannot be read is renamed aside (`<name>.damaged-<timestamp>`), reported with its name and
never overwritten; one written by a newer CutTree, or made for another image size, is refused and
left in place. The rest of the project keeps working.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, NoReturn, Optional

from core.atomic_io import atomic_write_json, atomic_write_npz
from core.errors import CutTreeError, SettingsError, printable
from core.image_sources import is_uri
from core.safe_json import DataFormatError, Fields, load_json
from core.settings import Settings
from core.tree import History, SegmentTree, node_color
from core.tree_file import NewerFileError, SavedTree, load_tree_file, tree_arrays

PROJECT_FILE = "project.json"
ANNOTATION_DIR = "annotations"
ANNOTATION_SUFFIX = ".cuttree.npz"
SCHEMA_VERSION = 1
MAX_PROJECT_JSON = 64 * 1024 * 1024
MAX_IMAGES = 1_000_000
MAX_CATEGORIES = 100_000

#: MIGRATIONS[v] turns a project.json dict of schema v into one of schema v + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class ProjectError(CutTreeError):
    """A project cannot be created or opened; the message names the file or folder."""


class AnnotationFileError(CutTreeError):
    """An image's annotation file cannot be used; the message says which and why."""


class DamagedFileError(AnnotationFileError):
    """An annotation file was unreadable; it was renamed aside (the message says where)."""


class RefusedFileError(AnnotationFileError):
    """An annotation file is intact but not usable here (newer format, or another image size);
    it is left in place, untouched, and the image must not be re-annotated over it."""


@dataclass
class Category:
    """An annotation class: COCO id (>= 1), name, display colour, thing (countable) or stuff."""

    id: int
    name: str
    color: tuple[int, int, int] = (128, 128, 128)
    isthing: bool = True
    supercategory: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": list(self.color),
                "isthing": self.isthing, "supercategory": self.supercategory}


@dataclass
class ImageEntry:
    """One image: its path relative to the project folder (POSIX separators) and its real size."""

    id: int
    path: str
    width: int
    height: int
    annotation: str
    crowd: list[int] = field(default_factory=list)   # node ids imported as COCO crowd regions
    coco_file_name: str = ""                          # the image's file_name in an imported COCO file
    coco_ids: dict[int, int] = field(default_factory=dict)   # node id -> imported annotation/segment id

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "path": self.path, "width": self.width, "height": self.height,
                               "annotation": self.annotation}
        if self.crowd:
            out["crowd"] = list(self.crowd)
        if self.coco_file_name:
            out["coco_file_name"] = self.coco_file_name
        if self.coco_ids:
            out["coco_ids"] = [[node, ann] for node, ann in sorted(self.coco_ids.items())]
        return out


@dataclass(frozen=True)
class TreeSnapshot:
    """One image's annotation file, encoded and waiting to be written."""

    image_id: int
    path: Path
    arrays: dict[str, Any]


class Project:
    """An open project folder (see module docstring)."""

    def __init__(self, folder: Path, categories: list[Category], settings: Settings,
                 images: Optional[list[ImageEntry]] = None) -> None:
        self.folder = Path(folder)
        self.categories = list(categories)
        self.settings = settings
        self.images: dict[int, ImageEntry] = {e.id: e for e in images or []}
        self.problems: list[str] = []
        self._paths: dict[str, int] = {}
        self._max_id = 0

    # ------------------------------------------------------------------ create / open / save
    @classmethod
    def create(cls, folder: Path, categories: Iterable[Category] = (),
               settings: Optional[Settings] = None) -> "Project":
        """Make a new project folder (refuses to overwrite an existing project)."""
        folder = Path(folder)
        if (folder / PROJECT_FILE).exists():
            raise ProjectError(f"{folder / PROJECT_FILE} already exists; open it instead")
        project = cls(folder, list(categories), settings or Settings())
        _check_categories(project.categories, str(folder / PROJECT_FILE))
        project.save()
        return project

    @classmethod
    def open(cls, folder: Path) -> "Project":
        """Read `project.json`; missing images are listed in `problems`, not raised."""
        folder = Path(folder)
        path = folder / PROJECT_FILE
        if not path.is_file():
            raise ProjectError(f"{folder} is not a CutTree project (no {PROJECT_FILE})")
        data = migrate(load_json(path, max_bytes=MAX_PROJECT_JSON), str(path))
        project = _parse_project(folder, data, str(path))
        project.problems.extend(project.missing_images())
        return project

    def save(self) -> None:
        """Write `project.json` atomically."""
        data = {
            "schema_version": SCHEMA_VERSION,
            "app": "CutTree",
            "categories": [c.to_dict() for c in self.categories],
            "settings": self.settings.to_dict(),
            "images": [e.to_dict() for e in self.images.values()],
        }
        atomic_write_json(self.folder / PROJECT_FILE, data, indent=1)

    # ------------------------------------------------------------------ images
    def add_image(self, image_path: Path | str, width: int, height: int,
                  image_id: Optional[int] = None) -> ImageEntry:
        """Register an image (path stored relative to the project folder when possible; a URI
        such as s3://bucket/a.jpg is stored as it is).

        `image_id` keeps a given id (an imported COCO image id) when it is free; otherwise the
        next free id is used.
        """
        rel = self.relative_path(image_path)
        if self.find_image(image_path) is not None:
            raise ProjectError(f"{image_path} is already in the project")
        if image_id is None or image_id in self.images or not 1 <= image_id <= 2 ** 53:
            image_id = self._max_id + 1
        digest = hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
        stem = PurePosixPath(rel).stem if is_uri(rel) else Path(image_path).stem
        annotation = f"{ANNOTATION_DIR}/{_safe_stem(stem)}-{digest}{ANNOTATION_SUFFIX}"
        entry = ImageEntry(image_id, rel, int(width), int(height), annotation)
        self.images[image_id] = entry
        self._paths[rel] = image_id
        self._max_id = max(self._max_id, image_id)
        return entry

    def relative_path(self, image_path: Path | str) -> str:
        """How `image_path` is stored: relative to the project folder, POSIX separators (a URI
        string as it is)."""
        if isinstance(image_path, str) and is_uri(image_path):
            return image_path
        image_path = Path(image_path).absolute()
        try:
            rel = os.path.relpath(image_path, self.folder.absolute())
        except ValueError:        # another drive on Windows: keep it absolute
            rel = str(image_path)
        return Path(rel).as_posix()

    def find_image(self, image_path: Path | str) -> Optional[ImageEntry]:
        """The entry of an image file (or URI) already in the project, if any."""
        image_id = self._path_index().get(self.relative_path(image_path))
        return None if image_id is None else self.images[image_id]

    def _path_index(self) -> dict[str, int]:
        """Stored path -> id, and the largest id, kept across calls (rebuilt when `images` changed
        size behind their back), so adding a large dataset's images one by one is not quadratic."""
        if len(self._paths) != len(self.images):
            self._paths = {e.path: e.id for e in self.images.values()}
            self._max_id = max(self.images, default=0)
        return self._paths

    def display_names(self) -> dict[int, str]:
        """Short names for the images: their paths below the deepest folder holding them all
        (the project folder when it does), never with `../`."""
        paths = {i: self.image_path(i) for i in self.images}
        if not paths:
            return {}
        folders = [str(p.parent) for p in paths.values()] + [str(self.folder.resolve())]
        try:
            common = Path(os.path.commonpath(folders[:-1]))
            inside = Path(os.path.commonpath(folders))
            common = inside if inside == self.folder.resolve() else common
        except ValueError:        # several drives on Windows
            return {i: p.name for i, p in paths.items()}
        return {i: p.relative_to(common).as_posix() for i, p in paths.items()}

    def image_path(self, image_id: int) -> Path:
        """The image's absolute path, symlinks resolved where they can be (a loop stays unresolved)."""
        path = self.folder / self.images[image_id].path
        try:
            return path.resolve()
        except (OSError, RuntimeError):       # a symlink loop: RuntimeError before Python 3.13
            return path.absolute()

    def missing_images(self) -> list[str]:
        """One message per image whose file is not where the project says."""
        return [f"image {printable(e.path)!r} (id {e.id}) was not found at {printable(str(self.image_path(e.id)))}"
                for e in self.images.values() if not self.image_path(e.id).is_file()]

    def category(self, category_id: int) -> Optional[Category]:
        return next((c for c in self.categories if c.id == category_id), None)

    def add_category(self, name: str, isthing: bool = True, color: Optional[tuple[int, int, int]] = None) -> Category:
        new_id = max((c.id for c in self.categories), default=0) + 1
        category = Category(new_id, name, color or node_color(new_id), isthing)
        self.categories.append(category)
        return category

    # ------------------------------------------------------------------ annotations
    def annotation_path(self, image_id: int) -> Path:
        return self.folder / self.images[image_id].annotation

    def has_tree(self, image_id: int) -> bool:
        return self.annotation_path(image_id).is_file()

    def save_tree(self, image_id: int, tree: SegmentTree, history: Optional[History] = None,
                  extra: Optional[dict[str, Any]] = None) -> None:
        """Write one image's annotation file atomically."""
        self.write(self.snapshot(image_id, tree, history, extra))

    def snapshot(self, image_id: int, tree: SegmentTree, history: Optional[History] = None,
                 extra: Optional[dict[str, Any]] = None) -> "TreeSnapshot":
        """Encode one image's annotation now (about a millisecond: a consistent copy that later
        edits cannot change); `write` it later, from any thread. The one way trees are saved."""
        return TreeSnapshot(image_id, self.annotation_path(image_id), tree_arrays(tree, history, extra))

    @staticmethod
    def write(snapshot: "TreeSnapshot") -> None:
        """Write a snapshot's annotation file atomically (compression and fsync: the slow part)."""
        atomic_write_npz(snapshot.path, snapshot.arrays)

    def load_tree(self, image_id: int) -> Optional[SavedTree]:
        """The image's saved tree, or None when it has none; a damaged file is moved aside
        (DamagedFileError), a newer or mismatched one refused in place (RefusedFileError)."""
        path = self.annotation_path(image_id)
        entry = self.images[image_id]
        if not path.is_file():
            return None
        try:
            saved = load_tree_file(path)
        except NewerFileError as exc:
            self._refuse(str(exc))
        except DataFormatError as exc:
            aside = _move_aside(path)
            message = (f"annotation file {path.name} of image {printable(entry.path)!r} is damaged "
                       f"({exc}); kept as {aside.name}, the image starts without annotations")
            self.problems.append(message)
            raise DamagedFileError(message) from exc
        if tuple(saved.tree.image_size) != (entry.height, entry.width):
            height, width = saved.tree.image_size
            self._refuse(f"annotation file {path} was made for a {width}x{height} image, but image "
                         f"{printable(entry.path)!r} is {entry.width}x{entry.height}; it is left untouched "
                         f"and not used (was the image replaced?)")
        return saved

    def _refuse(self, message: str) -> NoReturn:
        self.problems.append(message)
        raise RefusedFileError(message)

    def iter_trees(self) -> Iterator[tuple[ImageEntry, SegmentTree]]:
        """Every image with a usable tree; the others are listed in `problems`."""
        for entry in list(self.images.values()):
            try:
                saved = self.load_tree(entry.id)
            except AnnotationFileError:
                continue
            if saved is not None:
                yield entry, saved.tree


def migrate(data: Any, name: str) -> dict[str, Any]:
    """Bring a project.json dict up to SCHEMA_VERSION through MIGRATIONS, or explain why not."""
    fields = Fields(data, name)
    version = fields.int("schema_version", lo=1)
    if version > SCHEMA_VERSION:
        raise ProjectError(f"{name}: schema version {version} was written by a newer CutTree "
                           f"(this one reads up to {SCHEMA_VERSION}); update CutTree to open it")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ProjectError(f"{name}: no migration from schema version {version}")
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data


def _parse_project(folder: Path, data: dict[str, Any], name: str) -> Project:
    top = Fields(data, name)
    categories = [_parse_category(c, f"{name} categories[{i}]")
                  for i, c in enumerate(top.list("categories", default=[], max_len=MAX_CATEGORIES))]
    _check_categories(categories, name)
    try:
        settings = Settings.from_dict(top.dict("settings", default={}) if top.has("settings") else {})
    except SettingsError as exc:
        raise DataFormatError(f"{name}: {exc}") from exc
    images = [_parse_image(e, f"{name} images[{i}]")
              for i, e in enumerate(top.list("images", default=[], max_len=MAX_IMAGES))]
    ids = [e.id for e in images]
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"{name}: image ids are repeated")
    annotations = [e.annotation for e in images]
    if len(set(annotations)) != len(annotations):
        raise DataFormatError(f"{name}: two images share an annotation file")
    return Project(folder, categories, settings, images)


def _parse_category(obj: Any, where: str) -> Category:
    f = Fields(obj, where)
    color = f.list("color", default=[128, 128, 128])
    if len(color) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color):
        raise f.error(f"'color' must be three integers 0..255, got {color!r}")
    return Category(f.int("id", lo=1, hi=2 ** 31 - 1), f.str("name", max_len=256), tuple(color),
                    f.bool("isthing", default=True) if f.has("isthing") else True,
                    f.str("supercategory", default="", max_len=256) if f.has("supercategory") else "")


#: the label sets the app ships (resources/label_sets/*.json)
LABEL_SETS = Path(__file__).resolve().parents[1] / "resources" / "label_sets"


def load_label_set(path: str | Path) -> list[Category]:
    """Categories from a COCO-style category list: a bare list, or an object holding it under
    "categories" (so any COCO instances or panoptic file works too).

    Raises DataFormatError naming the file and the first bad entry.
    """
    data = load_json(path)
    items = data.get("categories") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise DataFormatError(f"{path}: expected a list of categories, or an object with a \"categories\" list")
    categories = [_parse_category(obj, f"{path}: categories[{i}]") for i, obj in enumerate(items)]
    if not categories:
        raise DataFormatError(f"{path}: the \"categories\" list is empty")
    _check_categories(categories, str(path))
    return categories


def _check_categories(categories: list[Category], name: str) -> None:
    ids = [c.id for c in categories]
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"{name}: category ids are repeated")
    if any(c.id < 1 for c in categories):
        raise DataFormatError(f"{name}: category ids must be 1 or more (COCO has no category 0)")


def _parse_image(obj: Any, where: str) -> ImageEntry:
    f = Fields(obj, where)
    annotation = f.str("annotation", max_len=1024)
    parts = PurePosixPath(annotation).parts
    if (len(parts) != 2 or parts[0] != ANNOTATION_DIR or not annotation.endswith(ANNOTATION_SUFFIX)
            or ".." in parts or "\\" in annotation):
        raise f.error(f"'annotation' {annotation!r} must be a file directly in {ANNOTATION_DIR}/")
    crowd = f.list("crowd", default=[], max_len=1_000_000) if f.has("crowd") else []
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in crowd):
        raise f.error("'crowd' must list node ids")
    pairs = f.list("coco_ids", default=[], max_len=10_000_000) if f.has("coco_ids") else []
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                            and 0 <= v < 2 ** 53 for v in p) for p in pairs):
        raise f.error("'coco_ids' must list [node id, annotation id] pairs")
    file_name = f.str("coco_file_name", default="", max_len=4096) if f.has("coco_file_name") else ""
    path = f.str("path", max_len=4096)
    if "\0" in path:
        raise f.error(f"'path' {printable(path)!r} holds a NUL byte, which no file name can")
    return ImageEntry(f.int("id", lo=1, hi=2 ** 53), path,
                      f.int("width", lo=1, hi=1 << 20), f.int("height", lo=1, hi=1 << 20), annotation, crowd,
                      file_name, {node: ann for node, ann in pairs})


def _safe_stem(stem: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:60]
    return cleaned.strip(".") or "image"


def _move_aside(path: Path) -> Path:
    """Rename a damaged file to `<name>.damaged-<UTC timestamp>` (never overwriting anything)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    counter = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{counter}")
        counter += 1
    os.replace(path, aside)
    return aside
