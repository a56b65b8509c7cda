"""YOLO segmentation export in the ultralytics layout: `images/<split>/`, `labels/<split>/`, `data.yaml`.

One `.txt` per image with one line per region: `class x1 y1 x2 y2 ...`, the polygon's vertices
normalised by the image's width and height, classes 0-based in category-id order. Polygons are
traced as for COCO polygons (holes cannot be represented and are lost, specks dropped); a region
of several parts becomes one polygon whose parts are joined by zero-width bridges between their
closest vertices, each part to the next in order, walked out and back, as ultralytics'
`convert_coco` (`merge_multi_segment`) writes multi-part COCO masks; a rasteriser fills it as the
union of the parts. Crowd regions are left out (convert_coco skips them too). `data.yaml` has no
`path` key, so ultralytics takes the folder of `data.yaml` as the dataset root; without a split
every image is in `train`, which also serves as `val`. The images are copied (or linked) in, as
ultralytics finds labels by replacing the last `/images/` of an image path with `/labels/`: a
folder named `images` inside a file name is written as `images_` so that rule cannot misfire.
Each label file is read back, rasterised and compared with its regions (IoU in the report).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from core.atomic_io import atomic_write_text
from core.export import ExportError
from core.export.common import (CategoryMap, ExportItem, ExportReport, ExportSource, iter_images, project_source,
                                region_polygons)
from core.export.image_paths import ImagePaths, assign_file_names, label_name, place_images
from core.export.output import FileSet
from core.export.polygons import region_rings
from core.export.regions import ExportImage
from core.export.rle import region_rle
from core.jobs import CancelToken, Progress
from core.project import Project

DATA_YAML = "data.yaml"
SPLITS = ("train", "val")


@dataclass
class YoloOptions:
    """The split and the polygon tracing."""

    val_fraction: float = 0.0                 # share of images in val (stable per file name)
    val_images: Sequence[str] = field(default_factory=tuple)   # file names (or stems) that go to val
    polygon_tolerance: float = 1.0
    min_part_area: float = 2.0
    min_iou: float = 0.5                      # self-check: a region below this fails the export


def export_project_yolo(project: Project, out: Path, options: Optional[YoloOptions] = None,
                        paths: Optional[ImagePaths] = None, progress: Optional[Progress] = None,
                        cancel: Optional[CancelToken] = None) -> ExportReport:
    return write_yolo(out, project_source(project), options or YoloOptions(), paths or ImagePaths(images="copy"),
                      progress, cancel)


def write_yolo(out: Path, source: ExportSource, options: YoloOptions, paths: ImagePaths,
               progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> ExportReport:
    """Write the dataset folder `out` (staged, swapped in whole)."""
    out = Path(out)
    if paths.images == "none":
        paths = ImagePaths(paths.image_root, False, "copy")
    if not 0.0 <= options.val_fraction < 1.0:
        raise ExportError(f"the val fraction must be in [0, 1), not {options.val_fraction}")
    report = ExportReport(out, skipped=list(source.skipped))
    assign_file_names(source.items, paths)
    cmap = CategoryMap(source.categories)
    class_of = {c.id: i for i, c in enumerate(cmap.categories)}
    split_of = _splits(source.items, options)
    targets: dict[int, str] = {}
    used: set[str] = set()
    ious: list[float] = []
    with FileSet(out, "YOLO segmentation") as files:
        for item, image in iter_images(source.items, cmap, set(), report, progress, cancel, "exporting YOLO"):
            split = split_of[item.image_id]
            name = f"{split}/{_safe_name(image.file_name)}"
            label_rel = label_name(name, image.image_id, used, ".txt")     # a.jpg and a.png: a.txt, a-ID.txt
            targets[item.image_id] = str(PurePosixPath(label_rel).with_suffix(PurePosixPath(name).suffix))
            label = files.path(f"labels/{label_rel}")
            lines = _label_lines(image, class_of, options, report)
            atomic_write_text(label, "".join(line + "\n" for line, _ in lines))
            ious.extend(check_labels(label, image, [index for _, index in lines], options.min_iou))
            report.images += 1
            report.annotations += len(lines)
        place_images([i for i in source.items if i.image_id in targets], files, "images", paths.images, targets)
        has_val = any(t.startswith("val/") for t in targets.values())
        atomic_write_text(files.path(DATA_YAML), data_yaml([c.name for c in cmap.categories], has_val))
        files.commit()
    report.polygon_iou = (min(ious), float(np.mean(ious))) if ious else None
    return report


def _splits(items: Sequence[ExportItem], options: YoloOptions) -> dict[int, str]:
    """`val` for listed images, or for a stable share of them (by a hash of the file name)."""
    listed = {str(v) for v in options.val_images}
    out = {}
    for item in items:
        stem = PurePosixPath(item.file_name).stem
        if listed:
            val = item.file_name in listed or stem in listed
        else:
            digest = int(hashlib.sha1(item.file_name.encode("utf-8")).hexdigest()[:8], 16)
            val = digest / 2 ** 32 < options.val_fraction
        out[item.image_id] = "val" if val else "train"
    if listed:
        found = {item.file_name for item in items} | {PurePosixPath(item.file_name).stem for item in items}
        missing = sorted(listed - found)
        if missing:
            raise ExportError(f"val images not in the export: {', '.join(missing[:5])}")
    return out


def _safe_name(file_name: str) -> str:
    parts = PurePosixPath(file_name.lstrip("/")).parts
    return "/".join(p + "_" if p == "images" and i < len(parts) - 1 else p for i, p in enumerate(parts))


def _label_lines(image: ExportImage, class_of: dict[int, int], options: YoloOptions,
                 report: ExportReport) -> list[tuple[str, int]]:
    rings = region_rings(image.labels, len(image.regions))
    lines = []
    for index, region in enumerate(image.regions):
        if region.iscrowd:
            continue
        polygons = region_polygons(image, index, rings[index], options.polygon_tolerance, options.min_part_area, report)
        if polygons is None:
            continue
        points = bridge_parts([np.array(r, dtype=float).reshape(-1, 2) for r in polygons])
        scaled = points / np.array([image.width, image.height], dtype=float)
        coords = " ".join(f"{v:.6g}" for v in scaled.ravel())
        lines.append((f"{class_of[region.category_id]} {coords}", index))
    return lines


def bridge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One polygon from several: each part joined to the next at their closest vertices, out and back.

    The walk goes once round part 0 from its bridge vertex, over the bridge and part way round each
    middle part to its next bridge, once round the last part, and back completing each middle
    part, so every bridge is walked twice in opposite directions and encloses no area. Two parts
    come out vertex for vertex as ultralytics' `merge_multi_segment` writes them.
    """
    if len(parts) == 1:
        return parts[0]
    exits, entries = [0] * len(parts), [0] * len(parts)
    for i in range(1, len(parts)):
        a, b = parts[i - 1], parts[i]
        distance = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        exits[i - 1], entries[i] = (int(v) for v in np.unravel_index(int(np.argmin(distance)), distance.shape))
    last = len(parts) - 1
    middle = range(1, last)
    walk = [_arc(parts[0], exits[0], exits[0], full=True)]
    walk += [_arc(parts[i], entries[i], exits[i], full=False) for i in middle]
    walk += [_arc(parts[last], entries[last], entries[last], full=True)]
    walk += [_arc(parts[i], exits[i], entries[i], full=True) for i in reversed(middle)]
    return np.concatenate(walk)


def _arc(ring: np.ndarray, start: int, stop: int, full: bool) -> np.ndarray:
    """Vertices from `start` forward to `stop` (inclusive); all the way round when they coincide and `full`."""
    n = len(ring)
    steps = (stop - start) % n
    if steps == 0 and full:
        steps = n
    return ring[(start + np.arange(steps + 1)) % n]


def check_labels(path: Path, image: ExportImage, region_indices: list[int], min_iou: float) -> list[float]:
    """Read a label file back as ultralytics would, rasterise each polygon, compare with its region."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if len(lines) != len(region_indices):
        raise ExportError(f"{path}: self-check failed: {len(lines)} lines for {len(region_indices)} regions")
    ious = []
    for fields, index in zip(lines, region_indices):
        values = np.array([float(v) for v in fields[1:]])
        if len(values) < 6 or len(values) % 2 or values.min() < 0 or values.max() > 1:
            raise ExportError(f"{path}: self-check failed: a line is not a normalised polygon")
        polygon = (values.reshape(-1, 2) * np.array([image.width, image.height])).ravel().tolist()
        written = mask_utils.frPyObjects([polygon], image.height, image.width)[0]
        region = region_rle(image, index)
        iou = float(mask_utils.iou([written], [region], [0])[0][0])
        if iou < min_iou:
            raise ExportError(f"{path}: self-check failed: region {index} reads back with IoU {iou:.3f}")
        ious.append(iou)
    return ious


def data_yaml(names: Sequence[str], has_val: bool) -> str:
    """ultralytics' dataset file: splits relative to this file's folder, class names by index."""
    lines = ["# YOLO segmentation dataset written by CutTree (no 'path': the dataset root is this folder)",
             "train: images/train", f"val: images/{'val' if has_val else 'train'}", f"nc: {len(names)}", "names:"]
    lines += [f"  {i}: {json.dumps(name)}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


def read_data_yaml(path: Path) -> dict[str, object]:
    """Read back the subset of YAML `data_yaml` writes (keys, and the indexed names block)."""
    out: dict[str, object] = {}
    names: dict[int, str] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("  "):
            index, name = line.strip().split(":", 1)
            names[int(index)] = json.loads(name.strip())
        else:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    out["names"] = names
    return out
