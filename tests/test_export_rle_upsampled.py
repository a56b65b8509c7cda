"""COCO RLE straight from the working-resolution map (decision 0005): the bytes must be exactly
what pycocotools.mask.encode gives on the full-size upsampled mask, for random atom maps, odd
integer and non-integer scales; the label PNG uses the same pixel mapping; the self-check
catches an encoder bug that keeps every area and box."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from core.export import ExportError
from core.export.coco import write_coco_instances
from core.export.regions import export_image, upsample_nearest
from core.export.rle import region_counts, region_rle
from core.render import frontier_label_image
from core.tree import SegmentTree

SIZES = [((7, 5), (21, 15)),       # x3 both ways
         ((6, 9), (30, 9)),        # x5 rows only
         ((11, 13), (17, 29)),     # non-integer scales
         ((16, 12), (16, 12)),     # no upsampling
         ((5, 8), (97, 131)),      # large odd factors
         ((9, 1), (40, 3))]        # one working column


def atom_map(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Random labels 0..4 with label 2 touching the top and bottom rows (runs cross columns)."""
    labels = np.random.default_rng(seed).integers(0, 5, shape).astype(np.int32)
    labels[:, 0] = 2
    return labels


@pytest.mark.parametrize("small, size", SIZES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_bytes_equal_pycocotools_on_the_full_size_mask(small, size, seed) -> None:
    labels = atom_map(small, seed)
    image = export_image(SegmentTree.flat(labels, image_size=size), 1, "x.png", lambda category: 1)
    full = upsample_nearest(labels, size)
    assert image.regions
    for index, region in enumerate(image.regions):
        mask = full == labels[region.small_slices][image.small[region.small_slices] == index][0]
        reference = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert region_rle(image, index)["counts"] == reference["counts"]
        assert region.area == int(mask_utils.area(reference)) == int(region_counts(image, index)[1::2].sum())
        rows, cols = region.slices
        assert [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start] == \
            mask_utils.toBbox(reference).tolist()
        assert np.array_equal(image.crop(index), mask[rows, cols])


def test_full_image_region_and_empty_start_are_encoded_like_pycocotools() -> None:
    labels = np.zeros((3, 4), np.int32)
    image = export_image(SegmentTree.flat(labels, image_size=(10, 7)), 1, "x.png", lambda category: 1)
    assert region_counts(image, 0).tolist() == [0, 70]
    assert region_rle(image, 0)["counts"] == mask_utils.encode(np.ones((10, 7), np.uint8, order="F"))["counts"]


def test_label_png_and_coco_masks_agree_pixel_for_pixel(tmp_path) -> None:
    """1536 -> 9000 is a scale where Pillow's NEAREST rounds some centres differently."""
    labels = atom_map((12, 1536), 4)
    tree = SegmentTree.flat(labels, image_size=(13, 9000))
    write_coco_instances(tmp_path / "c.json", [("x.png", tree)])
    data = json.loads((tmp_path / "c.json").read_text())
    png = frontier_label_image(tree)
    frontier = tree.frontier_labels()[0]
    for ann in data["annotations"]:
        mask = mask_utils.decode(ann["segmentation"]).astype(bool)
        values = np.unique(png[mask])
        assert len(values) == 1 and np.array_equal(png == values[0], mask)
    assert np.array_equal(png, upsample_nearest(frontier.astype(png.dtype), (13, 9000)))


def test_self_check_decodes_pixels_and_catches_a_bug_that_keeps_area_and_box(tmp_path, monkeypatch) -> None:
    """Swap the values of two pixels inside the largest region's box: the area, the box and the
    re-encoded reference all agree with the file, only pycocotools' decoded pixels differ."""
    from core.export import rle
    labels = np.zeros((6, 6), np.int32)
    labels[:, :5] = 1                                 # the largest region, the one decoded
    labels[2, 2] = 2                                  # its hole, moved down by the bug
    honest = rle.upsampled_counts

    def shifted(mask, row_starts, col_starts, height, width):
        if mask.shape == (6, 5) and not mask[2, 2]:
            mask = mask.copy()
            mask[2, 2], mask[3, 2] = True, False
        return honest(mask, row_starts, col_starts, height, width)

    monkeypatch.setattr(rle, "upsampled_counts", shifted)
    with pytest.raises(ExportError, match="decodes pixels that differ"):
        write_coco_instances(tmp_path / "c.json", [("x.png", SegmentTree.flat(labels, image_size=(18, 18)))])
    monkeypatch.setattr(rle, "upsampled_counts", honest)
    write_coco_instances(tmp_path / "c.json", [("x.png", SegmentTree.flat(labels, image_size=(18, 18)))])
