"""The `file_name` of each exported image, and copies or links of the images for a dataset folder.

Consumers resolve `file_name` against an image root they are given (pycocotools, detectron2,
supervision, Datumaro and ultralytics all refuse or mishandle `../` and absolute names), so names
are written relative to an image root: the one the user gives, else the folder an imported COCO
file used (so a round trip keeps its names), else the deepest folder holding every exported
image (images in one folder get bare names). Never `..`; absolute only on request.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Optional, Sequence

from core.export import ExportError

if TYPE_CHECKING:
    from core.export.common import ExportItem
    from core.export.output import FileSet

IMAGE_MODES = ("none", "copy", "link")


@dataclass
class ImagePaths:
    """How image paths are written and whether the images go into the export."""

    image_root: Optional[Path] = None
    absolute_paths: bool = False
    images: str = "none"            # "copy" or "link": a self-contained dataset folder

    def __post_init__(self) -> None:
        if self.images not in IMAGE_MODES:
            raise ExportError(f"images must be one of {', '.join(IMAGE_MODES)}, not {self.images!r}")
        if self.absolute_paths and self.images != "none":
            raise ExportError("absolute image paths and copied or linked images exclude each other")


def assign_file_names(items: Sequence["ExportItem"], paths: ImagePaths) -> Optional[Path]:
    """Set each item's `file_name` from its image path; returns the image root used."""
    located = [item for item in items if item.path is not None]
    if not located:
        return None
    if paths.absolute_paths:
        for item in located:
            item.file_name = Path(os.path.abspath(item.path)).as_posix()
        return None
    root = Path(os.path.abspath(paths.image_root)) if paths.image_root else default_root(located)
    for item in located:
        relative = os.path.relpath(os.path.abspath(item.path), root)
        if relative == os.curdir or relative.split(os.sep)[0] == os.pardir or os.path.isabs(relative):
            raise ExportError(f"image {item.path} is not inside the image root {root}; "
                              "choose another image root or absolute paths")
        item.file_name = PurePosixPath(Path(relative).as_posix()).as_posix()
    return root


def default_root(items: Sequence["ExportItem"]) -> Path:
    """The root an imported COCO file used, when every image agrees; else the deepest common folder."""
    paths = [Path(os.path.abspath(item.path)) for item in items]
    common = Path(os.path.commonpath([p.parent for p in paths]))
    roots = {_import_root(path, item.kept_file_name) for path, item in zip(paths, items) if item.kept_file_name}
    if len(roots) == 1:
        root = roots.pop()
        if root is not None and all(root in p.parents for p in paths):
            return root
    return common


def _import_root(path: Path, file_name: str) -> Optional[Path]:
    parts = PurePosixPath(file_name).parts
    if not parts or len(parts) >= len(path.parts) or tuple(path.parts[-len(parts):]) != parts:
        return None
    return Path(*path.parts[:-len(parts)])


def place_images(items: Sequence["ExportItem"], files: "FileSet", folder: str, mode: str,
                 target_of: Optional[dict[int, str]] = None) -> None:
    """Copy (or symlink) each item's image to `<folder>/<its file_name>` inside the staged file set."""
    for item in items:
        if item.path is None:
            raise ExportError(f"{item.file_name!r}: the image file is unknown, so it cannot be copied")
        relative = (target_of or {}).get(item.image_id, item.file_name)
        destination = files.path(f"{folder}/{relative}")
        try:
            if mode == "link":
                os.symlink(os.path.abspath(item.path), destination)
            else:
                shutil.copyfile(item.path, destination)
        except OSError as exc:
            raise ExportError(f"{item.path}: cannot {mode} the image into the export ({exc.strerror or exc})") from exc


def label_name(file_name: str, image_id: int, used: set[str], suffix: str = ".png") -> str:
    """The image's file name with `suffix` (its folders kept, never absolute), unique among `used`."""
    name = PurePosixPath(file_name.lstrip("/"))
    stem = name.with_suffix("") if name.stem else name / "image"
    label = f"{stem}{suffix}"
    if label in used:
        label = f"{stem}-{image_id}{suffix}"
    used.add(label)
    return label
