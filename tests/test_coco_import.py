"""COCO import: polygons, compressed/uncompressed RLE, crowd; malformed entries skipped one by one."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from core.cli import import_cmd
from core.coco_import import import_coco
from core.export.coco import export_project_coco
from core.project import Project
from core.safe_json import DataFormatError
from tests.export_fixtures import hard_labels

H, W = 24, 32


def rle_str(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


def rle_list(mask):
    flat = mask.T.ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": [H, W], "counts": np.diff(np.concatenate([[0], edges])).tolist()}


def write_dataset(tmp_path, annotations, categories=None, images=None):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "a.png")
    data = {"images": images or [{"id": 7, "file_name": "a.png", "width": W, "height": H}],
            "annotations": annotations,
            "categories": categories or [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    return path


def ann(ann_id, seg, cat=1, crowd=0):
    return {"id": ann_id, "image_id": 7, "category_id": cat, "segmentation": seg, "iscrowd": crowd,
            "area": 1.0, "bbox": [0, 0, 1, 1]}


def load_only_tree(project_dir):
    project = Project.open(project_dir)
    entry = next(iter(project.images.values()))
    return project, entry, project.load_tree(entry.id).tree


def test_polygons_rle_and_crowd_become_regions(tmp_path):
    labels = hard_labels()
    anns = [ann(1, [[2, 2, 15, 2, 15, 13, 2, 13]]),                 # polygon rectangle
            ann(2, rle_str(labels == 3), cat=2),                      # compressed RLE, two parts
            ann(3, rle_list(labels == 5), cat=2, crowd=1)]            # uncompressed RLE, crowd
    result = import_coco(write_dataset(tmp_path, anns), tmp_path, tmp_path / "proj")
    assert result.images == 1 and result.annotations == 3 and not result.problems
    project, entry, tree = load_only_tree(tmp_path / "proj")
    assert entry.path == "../a.png" and (entry.width, entry.height) == (W, H)
    front = tree.frontier()
    cats = sorted(tree.effective_category(n) or 0 for n in front)
    assert cats == [0, 1, 2, 2]                                       # plus the unlabelled rest
    two_parts = next(n for n in front if tree.mask(n)[15, 1])
    assert np.array_equal(tree.mask(two_parts), labels == 3)
    assert entry.crowd == [next(n for n in front if tree.mask(n)[0, 0])]
    assert {c.name for c in project.categories} == {"cat", "dog"}


def test_smaller_annotations_stay_on_top(tmp_path):
    big = np.ones((H, W), bool)
    small = np.zeros((H, W), bool)
    small[3:6, 3:6] = True
    result = import_coco(write_dataset(tmp_path, [ann(1, rle_str(small)), ann(2, rle_str(big), cat=2)]),
                         tmp_path, tmp_path / "proj")
    _, _, tree = load_only_tree(tmp_path / "proj")
    assert result.annotations == 2 and len(tree.frontier()) == 2
    assert tree.effective_category(tree.node_at(4, 4)) == 1


@pytest.mark.parametrize("seg, reason", [
    ([], "empty segmentation"),
    ([[1, 1, 5, 5]], "at least 3 points"),
    ([[1, 1, 5, 5, 9]], "at least 3 points"),
    ([[1, 1, 50, 1, 50, 9]], "outside"),
    ([[-1, 1, 5, 1, 5, 9]], "outside"),
    ([["a", 1, 5, 1, 5, 9]], "not a list of numbers"),
    ({"size": [H, W + 1], "counts": [H * (W + 1)]}, "RLE size"),
    ({"size": [H, W], "counts": [5, 5]}, "cover 10 pixels"),
    ({"size": [H, W], "counts": [-5, H * W + 5]}, "non-negative"),
    ({"size": [H, W], "counts": "0~~~~~~~"}, "compressed RLE"),
    ({"size": [H, W], "counts": "abc"}, "end in the middle"),
    ({"size": [H, W], "counts": mask_utils.encode(np.ones((H, W + 1), np.uint8, order="F"))["counts"].decode()},
     "cover 792 pixels"),
    ("nonsense", "polygons or RLE"),
    ({"size": [H, W], "counts": [H * W]}, "covers no pixel"),
])
def test_malformed_segmentations_are_reported_and_skipped(tmp_path, seg, reason):
    good = ann(1, [[2, 2, 10, 2, 10, 10]])
    result = import_coco(write_dataset(tmp_path, [good, ann(2, seg)]), tmp_path, tmp_path / "proj")
    assert result.annotations == 1 and len(result.problems) == 1
    assert "annotation id 2" in result.problems[0] and reason in result.problems[0]


def test_each_bad_entry_reported_once_and_the_rest_imported(tmp_path):
    anns = [ann(1, [[2, 2, 10, 2, 10, 10]]),
            ann(1, [[12, 2, 20, 2, 20, 10]]),                         # duplicate id
            ann(3, [[12, 2, 20, 2, 20, 10]], cat=9),                  # unknown category
            {**ann(4, [[12, 2, 20, 2, 20, 10]]), "image_id": 99},     # unknown image
            {"id": "five"},                                            # wrong type
            ann(6, [[12, 12, 20, 12, 20, 20]], cat=2)]
    categories = [{"id": 0, "name": "_background_"}, {"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    result = import_coco(write_dataset(tmp_path, anns, categories), tmp_path, tmp_path / "proj")
    assert result.annotations == 2
    text = "\n".join(result.problems)
    for expected in ("duplicate annotation id", "unknown category_id 9", "image_id 99", "'id' must be an integer",
                     "category id 0"):
        assert expected in text
    assert len(result.problems) == 5


def test_coco_project_coco_round_trip(tmp_path):
    labels = hard_labels()
    masks = {k: labels == k for k in (1, 3, 4, 5, 6)}
    anns = [ann(i, rle_str(m), cat=1 + i % 2) for i, m in enumerate(masks.values(), start=1)]
    import_coco(write_dataset(tmp_path, anns), tmp_path, tmp_path / "proj")
    project = Project.open(tmp_path / "proj")
    export_project_coco(project, tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())
    before = {(a["category_id"], mask_utils.decode(a["segmentation"]).tobytes()) for a in anns}
    after = {(a["category_id"], mask_utils.decode(a["segmentation"]).tobytes()) for a in again["annotations"]}
    assert before == after


def test_hostile_files_are_rejected_with_the_file_name(tmp_path):
    cases = {"deep.json": "[" * 5000 + "]" * 5000,
             "huge.json": '{"images": [], "annotations": [], "x": 1' + "0" * 5000 + "}",
             "types.json": '{"images": "no", "annotations": []}',
             "text.json": "not json at all"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataFormatError, match=name):
            import_coco(tmp_path / name, tmp_path, tmp_path / f"proj-{name}")


def test_cli_import_through_argparse(tmp_path, capsys):
    path = write_dataset(tmp_path, [ann(1, [[2, 2, 10, 2, 10, 10]]), ann(2, [])])
    parser = argparse.ArgumentParser()
    import_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["import", str(path), "--images", str(tmp_path), "--project", str(tmp_path / "p")])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "imported 1 regions on 1 images" in out and "empty segmentation" in out
    args = parser.parse_args(["import", str(tmp_path / "missing.json"), "--images", ".", "--project", "p"])
    assert args.handler(args) == 1
    assert "missing.json" in capsys.readouterr().err


def test_panoptic_import_reports_bad_segments_one_by_one(tmp_path):
    ids = np.zeros((H, W), np.int64)
    ids[2:10, 2:10] = 5
    ids[12:20, 3:9] = 6
    ids[0, 20:] = 7                                                   # in the PNG, not in segments_info
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    (tmp_path / "pan").mkdir()
    Image.fromarray(rgb).save(tmp_path / "pan" / "a.png")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "a.jpg")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "b.jpg")
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": W, "height": H},
                       {"id": 2, "file_name": "b.jpg", "width": W, "height": H}],
            "annotations": [
                {"image_id": 1, "file_name": "a.png", "segments_info": [
                    {"id": 5, "category_id": 1, "iscrowd": 0},
                    {"id": 6, "category_id": 99},
                    {"id": 8, "category_id": 2},
                    {"id": 5, "category_id": 2}]},
                {"image_id": 2, "file_name": "../../etc/b.png", "segments_info": []}],
            "categories": [{"id": 1, "name": "cat", "isthing": 1, "color": [1, 2, 3]},
                           {"id": 2, "name": "road", "isthing": 0}]}
    (tmp_path / "pan.json").write_text(json.dumps(data))
    result = import_coco(tmp_path / "pan.json", tmp_path, tmp_path / "proj")
    text = "\n".join(result.problems)
    for expected in ("unknown category_id 99", "segment 8 has no pixel", "duplicate segment id 5",
                     "not in segments_info", "must be a path inside the PNG folder"):
        assert expected in text
    assert len(result.problems) == 5 and result.annotations == 1
    project = Project.open(tmp_path / "proj")
    tree = project.load_tree(1).tree
    assert tree.effective_category(tree.node_at(5, 5)) == 1
    assert tree.effective_category(tree.node_at(15, 5)) is None       # skipped segment: unlabelled
    assert project.category(1).color == (1, 2, 3) and not project.category(2).isthing
