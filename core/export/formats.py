"""The one table of export formats, read by the CLI (`cuttree export`) and the window's export dialog.

Each format names its label, whether it writes a file or a folder, the options it takes (with
their CLI flag, label and help, from which the argparse flags and the dialog's widgets are
built), its writer, and a read-back check that reads a published export the way its consumers
do (used by the kill tests and available to anyone holding an export). Adding a format is one
writer module plus one entry in `FORMATS`; adding an option is one `Option` in a format's list
(or in `IMAGE_OPTIONS`, which every format takes, such as `include_suggested`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from core.export import ExportError
from core.export.coco import CocoOptions, write_coco
from core.export.common import ExportReport, ExportSource, with_suggestions
from core.export.image_paths import ImagePaths
from core.export.panoptic import write_panoptic
from core.export.readback import read_back_coco, read_back_panoptic, read_back_semantic, read_back_yolo
from core.export.semantic import write_semantic
from core.export.yolo import YoloOptions, write_yolo
from core.jobs import CancelToken, Progress


@dataclass(frozen=True)
class Option:
    """One export option: `key` in the options dict, its CLI flag, dialog label and help.

    `kind` is bool (a checkbox / flag), float, Path (a folder), "list" (comma-separated names)
    or "choice" (`choices`; on the CLI one flag per choice but the default, from `flags`).
    """

    key: str
    label: str
    help: str
    kind: Any = bool
    default: Any = False
    choices: tuple[str, ...] = ()
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


Writer = Callable[[Path, ExportSource, dict[str, Any], Optional[Progress], Optional[CancelToken]], ExportReport]


@dataclass(frozen=True)
class ExportFormat:
    """A row of the table."""

    name: str
    label: str
    target: str                     # "file" (a JSON; a folder with copied images) or "folder"
    options: tuple[Option, ...]
    write: Writer
    read_back: Callable[[Path], str]
    default_name: str

    def target_for(self, options: dict[str, Any]) -> str:
        """"file" or "folder" for these options (copied or linked images make a dataset folder)."""
        return "folder" if self.target == "folder" or options.get("images", "none") != "none" else "file"

    def all_options(self) -> tuple[Option, ...]:
        return IMAGE_OPTIONS + self.options


IMAGE_OPTIONS = (
    Option("include_suggested", "Include suggested labels",
           "export accepted and suggested labels (see `propagate`); without it only the labels the "
           "annotator set or accepted"),
    Option("image_root", "Image root", "file_name is written relative to this folder "
           "(default: the deepest folder holding every exported image)", Path, None),
    Option("absolute_paths", "Absolute image paths", "write absolute file_name paths (not portable)"),
    Option("images", "Images", "copy or link the images into a self-contained dataset folder "
           "(--out is then a folder)", "choice", "none", ("none", "copy", "link"),
           {"copy": "--copy-images", "link": "--link-images"}),
)
POLYGON_TOLERANCE = Option("polygon_tolerance", "Polygon tolerance (px)",
                           "Douglas-Peucker tolerance of traced polygons", float, 1.0)


def _paths(options: dict[str, Any], default_images: str = "none") -> ImagePaths:
    return ImagePaths(options.get("image_root"), bool(options.get("absolute_paths")),
                      options.get("images") or default_images)


def _coco(out: Path, source: ExportSource, o: dict[str, Any], progress: Optional[Progress],
          cancel: Optional[CancelToken]) -> ExportReport:
    coco = CocoOptions(polygons=bool(o.get("polygons")), include_unlabelled=bool(o.get("include_unlabelled")),
                       merge_stuff=bool(o.get("merge_stuff")), polygon_tolerance=float(o.get("polygon_tolerance", 1.0)))
    return write_coco(out, source, coco, _paths(o), progress, cancel)


def _panoptic(out: Path, source: ExportSource, o: dict[str, Any], progress: Optional[Progress],
              cancel: Optional[CancelToken]) -> ExportReport:
    return write_panoptic(out, source, True, _paths(o), progress, cancel)


def _semantic(out: Path, source: ExportSource, o: dict[str, Any], progress: Optional[Progress],
              cancel: Optional[CancelToken]) -> ExportReport:
    return write_semantic(out, source, _paths(o), progress, cancel)


def _yolo(out: Path, source: ExportSource, o: dict[str, Any], progress: Optional[Progress],
          cancel: Optional[CancelToken]) -> ExportReport:
    yolo = YoloOptions(val_fraction=float(o.get("val_fraction", 0.0)), val_images=tuple(o.get("val_images") or ()),
                       polygon_tolerance=float(o.get("polygon_tolerance", 1.0)))
    return write_yolo(out, source, yolo, _paths(o, "copy"), progress, cancel)


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("coco", "COCO instances (RLE masks, or polygons)", "file", (
        Option("polygons", "Polygons instead of RLE masks", "polygons instead of RLE (holes are lost)"),
        Option("include_unlabelled", "Export unlabelled regions too",
               "export unlabelled regions too, as an extra 'unlabelled' category"),
        Option("merge_stuff", "One annotation per stuff category", "one annotation per stuff category and image"),
        POLYGON_TOLERANCE,
    ), _coco, read_back_coco, "instances.json"),
    ExportFormat("panoptic", "COCO panoptic (PNG + JSON)", "file", (), _panoptic, read_back_panoptic,
                 "panoptic.json"),
    ExportFormat("semantic", "Semantic PNGs (class index, 255 = void)", "folder", (), _semantic,
                 read_back_semantic, "semantic"),
    ExportFormat("yolo", "YOLO segmentation (ultralytics)", "folder", (
        Option("val_fraction", "Validation share", "share of images in the val split (0 = no split)", float, 0.0),
        Option("val_images", "Validation images", "comma-separated file names (or stems) for the val split",
               "list", ()),
        POLYGON_TOLERANCE,
    ), _yolo, read_back_yolo, "yolo"),
)}


def export_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise ExportError(f"unknown export format {name!r} (known: {', '.join(FORMATS)})")
    return FORMATS[name]


def run_export(name: str, source: ExportSource, out: Path, options: Optional[dict[str, Any]] = None,
               progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ExportReport:
    """Export `source` as format `name` to `out`; `options` keys must be options of that format."""
    fmt = export_format(name)
    options = dict(options or {})
    known = {o.key for o in fmt.all_options()}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ExportError(f"the {name} format takes no option {', '.join(unknown)}")
    if options.pop("include_suggested", False):
        source = with_suggestions(source)
    return fmt.write(Path(out), source, options, progress, cancel)
