"""CamVid loading and the per-class scores of region labellings."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.camvid import (VOID, camvid_frames, class_scores, confusion, oracle_confusion,
                         region_majority)
from core.errors import CutTreeError

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def _write_split(root: Path, names: list[str], truth: np.ndarray) -> None:
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    for name in names:
        Image.fromarray(np.zeros(truth.shape + (3,), np.uint8)).save(root / "val" / name)
        Image.fromarray(truth).save(root / "valannot" / name)


def test_frames_are_sorted_and_need_a_label_map(tmp_path):
    truth = np.full((4, 6), 3, np.uint8)
    _write_split(tmp_path, ["b.png", "a.png"], truth)
    (tmp_path / "valannot" / "b.png").unlink()
    frames = camvid_frames(tmp_path)
    assert [f.name for f in frames] == ["a"]
    assert np.array_equal(frames[0].labels(), truth)


def test_missing_layout_names_the_folder(tmp_path):
    with pytest.raises(CutTreeError, match="valannot"):
        (tmp_path / "val").mkdir()
        camvid_frames(tmp_path)


def test_unreadable_label_map_names_the_file(tmp_path):
    _write_split(tmp_path, ["a.png"], np.zeros((2, 2), np.uint8))
    (tmp_path / "valannot" / "a.png").write_bytes(b"not a png")
    with pytest.raises(CutTreeError, match="a.png"):
        camvid_frames(tmp_path)[0].labels()


def test_oracle_gives_each_region_its_majority_and_ignores_void():
    truth = np.array([[0, 0, 1, 1],
                      [0, 3, 1, VOID],
                      [VOID, VOID, VOID, VOID]], np.uint8)
    regions = np.array([[0, 0, 1, 1],
                        [0, 0, 1, 1],
                        [2, 2, 2, 2]])
    assert list(region_majority(regions, truth)) == [0, 1, VOID]
    matrix, totals = oracle_confusion(regions, truth)
    scores = class_scores(matrix, totals)
    # class 0: 3 right of 3; class 1: 3 of 3; class 3: its pixel went to class 0
    assert scores.iou[0] == pytest.approx(3 / 4)
    assert scores.iou[1] == 1.0
    assert scores.iou[3] == 0.0
    assert np.isnan(scores.iou[2])
    assert scores.pixel_accuracy == pytest.approx(6 / 7)
    assert scores.miou == pytest.approx((0.75 + 1 + 0) / 3)


def test_unlabelled_prediction_counts_as_a_miss():
    truth = np.array([[2, 2]], np.uint8)
    predicted = np.array([[2, VOID]])
    matrix = confusion(predicted, truth)
    scores = class_scores(matrix, np.bincount(truth.ravel(), minlength=VOID))
    assert scores.iou[2] == 0.5 and scores.pixel_accuracy == 0.5


@pytest.mark.skipif(not CAMVID.is_dir(), reason="shared CamVid data not present")
def test_shared_camvid_val_reads():
    frames = camvid_frames(CAMVID)
    assert len(frames) == 101
    labels = frames[0].labels()
    assert labels.shape == (360, 480) and labels.max() <= VOID
