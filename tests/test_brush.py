"""Brush stroke rasterisation."""
import numpy as np

from core.brush import stroke_mask


def test_single_dab_is_a_disk_around_the_point():
    mask = stroke_mask((20, 20), [(10.0, 10.0)], 3)
    rows, cols = np.nonzero(mask)
    assert mask[10, 10] and mask[7, 10] and not mask[6, 10]
    assert np.all((rows + 0.5 - 10) ** 2 + (cols + 0.5 - 10) ** 2 <= 9)


def test_stroke_covers_the_path_between_points_and_clips_at_the_border():
    mask = stroke_mask((10, 40), [(5.0, -3.0), (5.0, 45.0)], 1.5)
    assert mask[4:7, :].all() and not mask[:3].any() and not mask[8:].any()
    assert stroke_mask((5, 5), [], 2).sum() == 0
    assert stroke_mask((5, 5), [(2.2, 2.7)], 0.1).sum() == 1      # the pixel under a tiny brush
