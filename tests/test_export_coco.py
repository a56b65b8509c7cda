"""COCO instances export: round trips, the §2 pitfalls, the self-check and the CLI."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pycocotools import mask as mask_utils
from scipy import ndimage

from core.cli import export_cmd
from core.export import ExportError
from core.export.coco import CocoOptions, export_project_coco, write_coco, write_coco_instances
from core.export.common import ExportSource, single_items
from core.export.image_paths import ImagePaths
from core.export.polygons import polygons_from_rings, region_rings, self_intersects, trace_polygons
from core.export.rle import upsampled_counts
from core.export.selfcheck import load_coco
from core.project import Project
from core.tree import SegmentTree
from tests.export_fixtures import CATEGORIES, hard_labels, hard_tree


def export(tmp_path, tree, name="a.json", **options):
    path = tmp_path / name
    report = write_coco(path, ExportSource(single_items([("img/a.png", tree)]), CATEGORIES), CocoOptions(**options),
                        ImagePaths())
    return json.loads(path.read_text()), report


def decoded(ann, height, width):
    seg = ann["segmentation"]
    if isinstance(seg, dict) and isinstance(seg["counts"], str):
        return mask_utils.decode(seg).astype(bool)
    rles = mask_utils.frPyObjects(seg, height, width)
    return mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles).astype(bool)


def test_rle_round_trip_gives_identical_masks(tmp_path):
    labels = hard_labels()
    data, report = export(tmp_path, hard_tree())
    expected = {k: labels == k for k in range(1, 7)}       # label 0 is unlabelled: not exported
    got = [decoded(a, 24, 32) for a in data["annotations"]]
    assert len(got) == 6 and report.annotations == 6
    for mask in got:
        assert any(np.array_equal(mask, m) for m in expected.values())
    assert np.array_equal(np.sum(got, axis=0), labels > 0)


def test_holes_multi_parts_single_pixels_and_borders_survive_rle(tmp_path):
    labels = hard_labels()
    data, _ = export(tmp_path, hard_tree())
    masks = [decoded(a, 24, 32) for a in data["annotations"]]
    ring = next(m for m in masks if m[2, 2])
    assert not ring[7, 7]                                          # the hole stays a hole
    two_parts = next(m for m in masks if m[15, 1])
    assert two_parts[20, 31] and two_parts.sum() == (labels == 3).sum()   # both parts, border column
    assert next(m for m in masks if m[22, 10]).sum() == 1           # one-pixel region
    assert next(m for m in masks if m[0, 0]).sum() == 64            # strip along the top border


def test_polygons_round_trip_with_measured_iou(tmp_path):
    data, report = export(tmp_path, hard_tree(), "p.json", polygons=True)
    labels = hard_labels()
    ious = []
    for ann in data["annotations"]:
        for part in ann["segmentation"]:
            assert len(part) >= 6 and len(part) % 2 == 0
        mask = decoded(ann, 24, 32)
        source = labels == np.bincount(labels[mask]).argmax()
        ious.append((mask & source).sum() / (mask | source).sum())
    assert report.holes_lost == 1                                  # the ring's hole
    assert min(ious) > 0.5 and report.polygon_iou is not None
    assert report.polygon_iou[0] == pytest.approx(min(ious), abs=1e-9)
    one_pixel = next(a for a in data["annotations"] if a["area"] == 1.0)
    assert decoded(one_pixel, 24, 32)[22, 10]


def test_ids_start_at_one_and_no_category_zero(tmp_path):
    data, _ = export(tmp_path, hard_tree())
    assert [a["id"] for a in data["annotations"]] == list(range(1, 7))
    assert [c["id"] for c in data["categories"]] == [1, 2, 3, 4]
    assert all(a["category_id"] >= 1 for a in data["annotations"])


def test_never_an_empty_segmentation(tmp_path):
    for options in ({}, {"polygons": True}, {"polygons": True, "min_part_area": 1000.0}):
        data, _ = export(tmp_path, hard_tree(), **options)
        assert len(data["annotations"]) == 6
        assert all(ann["segmentation"] for ann in data["annotations"])
        if options:
            assert all(len(part) >= 6 for ann in data["annotations"] for part in ann["segmentation"])


def test_no_ignore_field_iscrowd_zero_and_str_counts(tmp_path):
    data, _ = export(tmp_path, hard_tree())
    for ann in data["annotations"]:
        assert "ignore" not in ann and ann["iscrowd"] == 0
        assert isinstance(ann["segmentation"]["counts"], str)
        assert ann["segmentation"]["size"] == [24, 32]


def test_bbox_and_area_agree_with_the_mask(tmp_path):
    for options in ({}, {"polygons": True}):
        data, _ = export(tmp_path, hard_tree(), **options)
        for ann in data["annotations"]:
            x, y, w, h = ann["bbox"]
            assert all(isinstance(v, float) for v in ann["bbox"])
            mask = decoded(ann, 24, 32)            # polygons: the mask pycocotools rasterises
            rows, cols = np.nonzero(mask)
            assert (x, y, w, h) == (cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1)
            assert ann["area"] == mask.sum()


def test_polygon_bbox_and_area_are_pycocotools_own_on_the_written_polygon(tmp_path):
    rng = np.random.default_rng(3)
    labels = ndimage.zoom(rng.integers(0, 12, (8, 10)), 7, order=0)[:53, :67]
    tree = SegmentTree.flat(labels.astype(np.int32))
    for node in tree.frontier():
        tree.label([node], 1 + node % 4)
    data, report = export(tmp_path, tree, "p.json", polygons=True, polygon_tolerance=2.0)
    assert report.polygon_iou is not None and report.polygon_iou[0] < 1.0      # simplification lost pixels
    for ann in data["annotations"]:
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 53, 67))
        assert ann["area"] == float(mask_utils.area(rle))
        assert ann["bbox"] == mask_utils.toBbox(rle).tolist()


def test_fortran_order_matches_pycocotools_and_c_order_is_refused():
    rng = np.random.default_rng(3)
    mask = rng.random((17, 23)) > 0.6
    reference = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = upsampled_counts(mask, np.arange(18), np.arange(24), 17, 23).tolist()
    assert mask_utils.frPyObjects({"size": [17, 23], "counts": counts}, 17, 23)["counts"] == reference["counts"]
    assert isinstance(reference["counts"], bytes)                  # must be decoded before json.dump
    with pytest.raises(Exception):
        mask_utils.encode(np.ascontiguousarray(mask.astype(np.uint8)))


def test_ignored_and_unlabelled_regions_are_not_exported(tmp_path):
    tree = hard_tree()
    tree.set_ignored([3])                                          # label 2 (dog inside the ring)
    data, _ = export(tmp_path, tree)
    assert len(data["annotations"]) == 5
    assert not any(decoded(a, 24, 32)[7, 7] for a in data["annotations"])


def test_include_unlabelled_adds_a_category(tmp_path):
    data, _ = export(tmp_path, hard_tree(), include_unlabelled=True)
    extra = data["categories"][-1]
    assert extra["id"] == 5 and len(data["annotations"]) == 7
    assert sum(a["category_id"] == 5 for a in data["annotations"]) == 1


def test_merge_stuff_gives_one_annotation_per_stuff_category(tmp_path):
    tree = hard_tree()
    tree.label([7], 3)                                             # diagonal pixels become sky (stuff)
    data, _ = export(tmp_path, tree, merge_stuff=True)
    sky = [a for a in data["annotations"] if a["category_id"] == 3]
    assert len(sky) == 1 and sky[0]["area"] == 64 + 3


def test_real_image_size_when_atom_map_is_smaller(tmp_path):
    labels = hard_labels()
    tree = SegmentTree.flat(labels, image_size=(48, 64))
    tree.label(list(range(2, 8)), 1)
    data, _ = export(tmp_path, tree)
    assert (data["images"][0]["height"], data["images"][0]["width"]) == (48, 64)
    masks = [decoded(a, 48, 64) for a in data["annotations"]]
    full = np.kron(labels, np.ones((2, 2), dtype=np.int32))
    assert np.array_equal(np.sum(masks, axis=0), full > 0)
    assert sum(m.sum() for m in masks) == 4 * (labels > 0).sum()


def test_class_agnostic_single_tree_writer(tmp_path):
    tree = SegmentTree.flat(hard_labels())
    report = write_coco_instances(tmp_path / "one.json", [("a.png", tree)])
    data = json.loads((tmp_path / "one.json").read_text())
    assert data["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
    assert report.annotations == 7 and {a["category_id"] for a in data["annotations"]} == {1}
    assert data["images"] == [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}]


def test_self_check_catches_c_order_rle_and_publishes_nothing(tmp_path, monkeypatch):
    def c_order_rle(image, index):                         # the classic bug: runs in row-major order
        height, width = image.height, image.width
        flat = (image.labels == index).astype(np.int8).ravel()
        edges = np.flatnonzero(np.diff(flat)) + 1
        counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
        counts = ([0] + counts) if flat[0] else counts
        return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)

    monkeypatch.setattr("core.export.coco.region_rle", c_order_rle)
    with pytest.raises(ExportError, match="self-check failed") as info:
        export(tmp_path, hard_tree(), "bad.json")
    assert "differs from the source" in str(info.value)
    assert not (tmp_path / "bad.json").exists()                    # nothing published
    assert (tmp_path / "bad.json.unverified").exists()              # kept for inspection


def test_self_check_fails_polygons_below_the_iou_floor(tmp_path):
    with pytest.raises(ExportError, match="polygon IoU"):
        export(tmp_path, hard_tree(), "p.json", polygons=True, min_polygon_iou=1.01)


def test_written_file_decodes_with_pycocotools_coco(tmp_path):
    export(tmp_path, hard_tree())
    coco = load_coco(tmp_path / "a.json")
    labels = hard_labels()
    assert len(coco.getAnnIds()) == 6 and coco.imgs[1]["width"] == 32
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann).astype(bool)
        assert np.array_equal(mask, labels == labels[mask][0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 14), st.integers(1, 14), st.integers(1, 6), st.integers(0, 2 ** 31 - 1))
def test_random_partitions_round_trip_exactly(tmp_path, height, width, k, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=(height, width))
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(height, width)
    tree = SegmentTree.flat(labels)
    chosen = [n for n in tree.frontier() if rng.random() < 0.7]
    for nid in chosen:
        tree.label([nid], int(rng.integers(1, 5)))
    data, report = export(tmp_path, tree, "r.json")
    covered = np.zeros((height, width), dtype=int)
    for ann in data["annotations"]:
        mask = decoded(ann, height, width)
        values = np.unique(labels[mask])
        assert len(values) == 1 and np.array_equal(mask, labels == values[0])
        assert ann["area"] == mask.sum()
        covered += mask
    assert covered.max() <= 1 and report.annotations == len(chosen)


def test_cli_export_through_argparse(tmp_path, capsys):
    project = Project.create(tmp_path / "proj", CATEGORIES)
    entry = project.add_image(tmp_path / "a.png", 32, 24)
    project.save()
    project.save_tree(entry.id, hard_tree())
    parser = argparse.ArgumentParser()
    export_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["export", str(tmp_path / "proj"), "--format", "coco", "--polygons",
                              "--out", str(tmp_path / "out.json")])
    assert args.handler(args) == 0
    assert "6 annotations" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "out.json").read_text())["annotations"]) == 6
    args = parser.parse_args(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json")])
    assert args.handler(args) == 1
    assert "not a CutTree project" in capsys.readouterr().err


def test_unsimplified_polygons_rasterise_exactly_to_the_regions_with_holes_filled():
    rng = np.random.default_rng(11)
    for _ in range(100):
        labels = rng.integers(-1, 4, size=(10, 13))
        rings = region_rings(labels, 4)
        for k in range(4):
            result = polygons_from_rings(rings[k], tolerance=0, min_part_area=0)
            expected = ndimage.binary_fill_holes(labels == k, structure=np.ones((3, 3)))
            got = decoded({"segmentation": result.rings}, 10, 13) if result.rings else np.zeros_like(expected)
            assert np.array_equal(got, expected)


def test_simplified_rings_are_simple_with_at_least_three_points():
    rng = np.random.default_rng(12)
    for _ in range(30):
        blob = ndimage.gaussian_filter(rng.random((40, 50)), 3) > 0.5
        result = trace_polygons(blob, 0, 0, tolerance=1.5)
        for ring in result.rings:
            points = np.array(ring).reshape(-1, 2)
            assert len(points) >= 3 and not self_intersects(points)
    bowtie = np.array([[0, 0], [2, 2], [0, 2], [2, 0]], dtype=float)
    assert self_intersects(bowtie) and not self_intersects(bowtie[[0, 2, 1, 3]])


def test_specks_are_dropped_and_counted_but_never_a_whole_region():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[16, 16] = True                                              # a one-pixel speck
    result = trace_polygons(mask, 0, 0)
    assert len(result.rings) == 1 and result.parts_dropped == 1
    specks = np.zeros((6, 6), bool)
    specks[1, 1] = specks[2, 2] = specks[3, 3] = True                # only specks: all kept
    result = trace_polygons(specks, 0, 0)
    assert len(result.rings) == 3 and result.parts_dropped == 0


def test_project_export_skips_damaged_and_unannotated_images(tmp_path):
    project = Project.create(tmp_path / "proj", CATEGORIES)
    for name in ("a", "b", "c"):
        project.add_image(tmp_path / f"{name}.png", 32, 24)
    project.save()
    project.save_tree(1, hard_tree())
    project.save_tree(2, hard_tree())
    project.annotation_path(2).write_bytes(b"garbage")
    report = export_project_coco(Project.open(tmp_path / "proj"), tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert [i["file_name"] for i in data["images"]] == ["a.png"] and report.annotations == 6
    text = "\n".join(report.skipped)
    assert "../c.png" in text and "no annotations" in text and "damaged" in text


@pytest.mark.parametrize("fmt, out", [("panoptic", "pan.json"), ("semantic", "sem")])
def test_cli_panoptic_and_semantic(tmp_path, capsys, fmt, out):
    project = Project.create(tmp_path / "proj", CATEGORIES)
    project.add_image(tmp_path / "a.png", 32, 24)
    project.save()
    project.save_tree(1, hard_tree())
    parser = argparse.ArgumentParser()
    export_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["export", str(tmp_path / "proj"), "--format", fmt, "--out", str(tmp_path / out)])
    assert args.handler(args) == 0
    assert "1 images" in capsys.readouterr().out
    assert (tmp_path / ("pan" if fmt == "panoptic" else "sem") / "a.png").is_file()
