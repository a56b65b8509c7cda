"""Read a published export back the way its consumers do, and check that its files agree.

Used by the kill tests (after a kill, an export must be a complete old or new one) and by
anyone holding an export: each function returns a one-line summary or raises `ExportError`
naming the file that disagrees. The writers' own self-checks compare with the source regions;
these only need the files.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from core.export import ExportError
from core.export.selfcheck import load_coco, read_png, rgb_to_id
from core.safe_json import DataFormatError, load_json


def read_back_coco(out: Path) -> str:
    """pycocotools loads the file, every mask decodes at its image's size, names stay inside the root."""
    out = Path(out)
    json_path, images = (out / "annotations" / "instances_default.json", out / "images") if out.is_dir() else (out, None)
    coco = load_coco(json_path)
    for img in coco.dataset.get("images", []):
        _check_name(json_path, img["file_name"], images)
    for ann in coco.dataset.get("annotations", []):
        img = coco.imgs[ann["image_id"]]
        if tuple(coco.annToRLE(ann)["size"]) != (img["height"], img["width"]):
            raise ExportError(f"{json_path}: annotation {ann['id']} decodes at the wrong size")
    return f"{json_path}: {len(coco.imgs)} images, {len(coco.anns)} annotations read back"


def read_back_panoptic(out: Path) -> str:
    """Every annotation's PNG exists and holds exactly its listed segments with their areas."""
    out = Path(out)
    json_path = out / "annotations" / "panoptic_default.json" if out.is_dir() else out
    png_dir, images = json_path.with_suffix(""), (out / "images" if out.is_dir() else None)
    data = _load(json_path)
    for img in data["images"]:
        _check_name(json_path, img["file_name"], images)
    for ann in data["annotations"]:
        png = png_dir / ann["file_name"]
        if not png.is_file():
            raise ExportError(f"{json_path}: PNG {ann['file_name']} is missing")
        values, counts = np.unique(rgb_to_id(read_png(png)[..., :3]), return_counts=True)
        found = {int(v): int(c) for v, c in zip(values, counts) if v != 0}
        listed = {s["id"]: s["area"] for s in ann["segments_info"]}
        if found != listed:
            raise ExportError(f"{png}: holds {len(found)} segments, the JSON lists {len(listed)} "
                              "(or their areas differ)")
    return f"{json_path}: {len(data['annotations'])} PNGs agree with the JSON"


def read_back_semantic(out: Path) -> str:
    """Every label PNG is 8-bit single-channel with values in the categories file (or 255)."""
    out = Path(out)
    data = _load(out / "categories.json")
    allowed = {c["index"] for c in data["classes"]} | {data["ignore_index"]}
    count = 0
    for png in sorted(out.rglob("*.png")):
        if png.relative_to(out).parts[0] in ("previews", "images"):
            continue
        with Image.open(png) as image:
            if image.mode != "L":
                raise ExportError(f"{png}: mode {image.mode}, not single-channel L")
            values = set(np.unique(np.asarray(image)).tolist())
        if not values <= allowed:
            raise ExportError(f"{png}: class values {sorted(values - allowed)[:5]} are not in categories.json")
        count += 1
    return f"{out}: {count} class-index PNGs agree with categories.json"


def read_back_yolo(out: Path) -> str:
    """Each image has the label file ultralytics derives from its path; each line is a valid polygon."""
    from core.export.yolo import read_data_yaml
    out = Path(out)
    names = read_data_yaml(out / "data.yaml")["names"]
    images = [p for p in (out / "images").rglob("*") if p.is_file() or p.is_symlink()]
    for image in images:
        label = ultralytics_label_path(image)
        if not label.is_file():
            raise ExportError(f"{image}: no label file at {label}")
        for line in label.read_text().splitlines():
            fields = line.split()
            values = np.array([float(v) for v in fields[1:]])
            if (not fields[0].isdigit() or int(fields[0]) >= len(names) or len(values) < 6 or len(values) % 2
                    or values.min() < 0 or values.max() > 1):
                raise ExportError(f"{label}: a line is not 'class x1 y1 x2 y2 ...' with normalised coordinates")
    return f"{out}: {len(images)} images, each with its label file"


def ultralytics_label_path(image: Path) -> Path:
    """The label file ultralytics reads for an image: the last `/images/` becomes `/labels/`, `.txt`."""
    text = str(image)
    marker = f"{os.sep}images{os.sep}"
    head, _, tail = text.rpartition(marker)
    return Path(f"{head}{os.sep}labels{os.sep}{tail}").with_suffix(".txt")


def _check_name(json_path: Path, file_name: str, images: Path | None) -> None:
    parts = PurePosixPath(file_name).parts
    if not parts or ".." in parts:
        raise ExportError(f"{json_path}: file_name {file_name!r} leaves the image root")
    if images is not None and not (images / file_name).exists():
        raise ExportError(f"{json_path}: image {file_name!r} is not in {images}")


def _load(path: Path) -> dict:
    try:
        data = load_json(path)
    except DataFormatError as exc:
        raise ExportError(str(exc)) from exc
    if not isinstance(data, dict):
        raise ExportError(f"{path}: not a JSON object")
    return data
