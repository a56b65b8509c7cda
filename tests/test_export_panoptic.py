"""COCO panoptic and semantic PNG exports, and the panopticapi sample imported and re-exported."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.coco_import import import_coco
from core.export.common import ExportSource, single_items
from core.export.panoptic import export_project_panoptic, write_panoptic
from core.export.selfcheck import rgb_to_id
from core.export.semantic import IGNORE, write_semantic
from core.project import Project
from tests.export_fixtures import CATEGORIES, hard_labels, hard_tree

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_panoptic_samples"


def read_ids(path: Path) -> np.ndarray:
    return rgb_to_id(np.asarray(Image.open(path).convert("RGB")))


def test_panoptic_png_decodes_to_the_segments(tmp_path):
    out = tmp_path / "pan.json"
    report = write_panoptic(out, ExportSource(single_items([("dir/a.jpg", hard_tree())]), CATEGORIES))
    data = json.loads(out.read_text())
    ann = data["annotations"][0]
    ids = read_ids(tmp_path / "pan" / ann["file_name"])
    labels = hard_labels()
    assert ann["file_name"] == "dir/a.png" and ids.shape == (24, 32)
    assert (ids[labels == 0] == 0).all()                           # unlabelled is void
    for seg in ann["segments_info"]:
        mask = ids == seg["id"]
        assert seg["area"] == mask.sum() and seg["id"] > 0 and seg["iscrowd"] == 0
        rows, cols = np.nonzero(mask)
        assert seg["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        assert len(np.unique(labels[mask])) == 1 or seg["category_id"] in (3, 4)
    assert report.annotations == len(ann["segments_info"]) == 6
    cats = {c["id"]: c for c in data["categories"]}
    assert cats[3]["isthing"] == 0 and cats[1]["isthing"] == 1 and cats[1]["color"] == [200, 40, 40]


def test_panoptic_merges_stuff_per_category(tmp_path):
    tree = hard_tree()
    tree.label([7], 3)                                             # second sky region
    out = tmp_path / "p.json"
    write_panoptic(out, ExportSource(single_items([("a.jpg", tree)]), CATEGORIES))
    segments = json.loads(out.read_text())["annotations"][0]["segments_info"]
    assert sum(s["category_id"] == 3 for s in segments) == 1


def test_semantic_png_holds_class_indices_and_ignore(tmp_path):
    tree = hard_tree()
    tree.set_ignored([5])                                          # the one-pixel cat
    report = write_semantic(tmp_path / "sem", ExportSource(single_items([("x/a.jpg", tree)]), CATEGORIES))
    image = Image.open(tmp_path / "sem" / "x" / "a.png")
    values = np.asarray(image.convert("L"))                        # as detectron2's read_image(..., "L")
    labels = hard_labels()
    assert image.mode == "L" and values.ndim == 2 and report.images == 1
    expected = {0: IGNORE, 1: 0, 2: 1, 3: 3, 4: IGNORE, 5: 2, 6: 1}    # category id k -> index k-1
    for label, value in expected.items():
        assert (values[labels == label] == value).all()
    categories = json.loads((tmp_path / "sem" / "categories.json").read_text())
    assert categories["ignore_index"] == 255
    assert [(c["index"], c["id"], c["name"]) for c in categories["classes"]] == \
        [(0, 1, "cat"), (1, 2, "dog"), (2, 3, "sky"), (3, 4, "grass")]
    preview = Image.open(tmp_path / "sem" / "previews" / "x" / "a.png")
    assert preview.mode == "P" and preview.getpalette()[:3] == [200, 40, 40]
    assert np.array_equal(np.asarray(preview), values)


@pytest.mark.skipif(not (SAMPLE / "panoptic_examples.json").is_file(), reason="panoptic sample not present")
def test_panopticapi_sample_imports_and_reexports_equal_segments(tmp_path):
    result = import_coco(SAMPLE / "panoptic_examples.json", SAMPLE / "input_images", tmp_path / "proj")
    assert result.images == 2 and result.annotations == 50 and not result.problems
    report = export_project_panoptic(Project.open(tmp_path / "proj"), tmp_path / "out" / "pan.json")
    assert report.annotations == 50
    original = json.loads((SAMPLE / "panoptic_examples.json").read_text())
    again = json.loads((tmp_path / "out" / "pan.json").read_text())
    name_of = {i["id"]: Path(i["file_name"]).name for i in original["images"] + again["images"]}
    assert {(Path(i["file_name"]).name, i["width"], i["height"]) for i in original["images"]} == \
        {(Path(i["file_name"]).name, i["width"], i["height"]) for i in again["images"]}
    for before in original["annotations"]:
        after = next(a for a in again["annotations"] if name_of[a["image_id"]] == name_of[before["image_id"]])
        assert _segments(SAMPLE / "panoptic_examples" / before["file_name"], before) == \
            _segments(tmp_path / "out" / "pan" / after["file_name"], after)


def _segments(png: Path, ann: dict) -> set:
    """Segments as (category, crowd, area, bbox, pixel positions) independent of their ids."""
    ids = read_ids(png)
    out = set()
    for seg in ann["segments_info"]:
        mask = ids == seg["id"]
        out.add((seg["category_id"], seg["iscrowd"], int(mask.sum()), tuple(seg["bbox"]),
                 np.flatnonzero(mask).tobytes()))
    return out
