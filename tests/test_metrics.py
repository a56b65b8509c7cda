"""Region measures and Hungarian-matched mIoU against hand-computed values."""
import math

import numpy as np
import pytest

from core.metrics import (MatchedIoU, confusion, contingency, rand_index, region_scores,
                          variation_of_information)


def halves(n: int = 4) -> np.ndarray:
    gt = np.zeros((n, n), int)
    gt[:, n // 2:] = 1
    return gt


def test_identical_maps_score_perfectly():
    seg = np.arange(16).reshape(4, 4) // 5
    s = region_scores(seg, [seg, seg + 7])  # label values do not matter
    assert s.covering == pytest.approx(1.0)
    assert s.pri == pytest.approx(1.0)
    assert s.voi == pytest.approx(0.0, abs=1e-12)


def test_one_segment_against_two_halves():
    gt = halves(4)                       # 16 pixels, two regions of 8
    s = region_scores(np.zeros_like(gt), [gt])
    # disagreeing pairs are the 8*8 pairs across the halves, out of C(16, 2) = 120
    assert s.pri == pytest.approx(1 - 64 / 120)
    assert s.voi == pytest.approx(1.0)  # H(G) = 1 bit, H(S) = 0, I = 0
    assert s.covering == pytest.approx(0.5)  # each half covers the whole with IoU 8/16


def test_quarters_against_halves():
    gt = halves(4)
    seg = np.zeros((4, 4), int)
    seg[2:, :] = 2
    seg += gt                             # four quarters of 4 pixels
    s = region_scores(seg, [gt])
    # disagreements: pairs split by seg but not by gt: within each half, 4*4 pairs
    assert s.pri == pytest.approx(1 - 32 / 120)
    assert s.voi == pytest.approx(1.0)    # H(S)=2, H(G)=1, I=1
    assert s.covering == pytest.approx(0.5)  # each half's best quarter: IoU 4/8


def test_scores_average_over_humans():
    gt = halves(4)
    seg = np.zeros_like(gt)
    s = region_scores(seg, [gt, seg])
    assert s.pri == pytest.approx((1 - 64 / 120 + 1) / 2)
    assert s.voi == pytest.approx(0.5)
    assert s.covering == pytest.approx((8 + 16) / 32)


def test_voi_is_symmetric_and_rand_index_of_a_known_table():
    n = np.array([[3.0, 1.0], [0.0, 2.0]])
    assert variation_of_information(n) == pytest.approx(variation_of_information(n.T))
    # pairs: 15; same in rows: C(4,2)+C(2,2)=7; same in cols: C(3,2)+C(3,2)=6;
    # same in both: C(3,2)+C(2,2)=4 -> agreements 15 - (7-4) - (6-4) = 10
    assert rand_index(n) == pytest.approx(10 / 15)
    h = -(4 / 6 * math.log2(4 / 6) + 2 / 6 * math.log2(2 / 6))
    h_joint = -sum(p * math.log2(p) for p in (3 / 6, 1 / 6, 2 / 6))
    # VoI = 2 H(S,G) - H(S) - H(G), with H(G) = H(3/6, 3/6) = 1
    assert variation_of_information(n) == pytest.approx(2 * h_joint - h - 1.0)


def test_contingency_rejects_different_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        contingency(np.zeros((2, 2)), np.zeros((2, 3)))


def test_region_scores_need_a_human():
    with pytest.raises(ValueError, match="at least one"):
        region_scores(np.zeros((2, 2)), [])


def test_hungarian_matching_with_ignored_pixels_and_extra_clusters():
    label = np.array([[0, 0, 1, 1],
                      [0, 0, 1, -1]])
    pred = np.array([[5, 5, 2, 2],
                     [5, 3, 2, 2]])
    m = MatchedIoU(n_classes=2)
    m.add(pred, label)
    # class 0 <- cluster 5 (3 px), cluster 3 unmatched: 1 FN; class 1 <- cluster 2 (3 px)
    assert m.tp.tolist() == [3, 3]
    assert m.fn.tolist() == [1, 0]
    assert m.fp.tolist() == [0, 0]      # the ignored pixel under cluster 2 is not a FP
    assert m.miou == pytest.approx((3 / 4 + 1) / 2)
    assert m.pixel_accuracy == pytest.approx(6 / 7)


def test_hungarian_accumulates_over_images_and_counts_false_positives():
    m = MatchedIoU(n_classes=2)
    m.add(np.array([[0, 0, 0, 1]]), np.array([[0, 0, 1, 1]]))
    m.add(np.array([[1, 1]]), np.array([[0, 0]]))
    # image 1: class 0 <- 0 (tp 2, fp 1), class 1 <- 1 (tp 1, fn 1)
    # image 2: class 0 <- 1 (tp 2), class 1 <- 0 (nothing)
    assert m.tp.tolist() == [4, 1]
    assert m.fp.tolist() == [1, 0]
    assert m.fn.tolist() == [0, 1]
    assert m.pixel_accuracy == pytest.approx(5 / 6)
    assert m.miou == pytest.approx((4 / 5 + 1 / 2) / 2)


def test_class_absent_everywhere_is_nan_and_skipped():
    m = MatchedIoU(n_classes=3)
    m.add(np.array([[0, 1]]), np.array([[0, 1]]))
    assert math.isnan(m.iou[2])
    assert m.miou == pytest.approx(1.0)


def test_confusion_is_at_least_square():
    hist = confusion(np.array([0, 0]), np.array([1, 2]), 3)
    assert hist.shape == (3, 3)
    assert hist[1, 0] == 1 and hist[2, 0] == 1
