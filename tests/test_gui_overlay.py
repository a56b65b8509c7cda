"""The overlay buffer redrawn only where regions changed equals a full redraw."""
import numpy as np

from gui.overlay import FrontierOverlay
from tests.test_tree import apply_random_op, random_tree


def test_incremental_overlay_equals_a_full_redraw_after_random_edits():
    rng = np.random.default_rng(5)
    tree = random_tree(rng, n_atoms=20, shape=(40, 50))
    tree.set_granularity(0.5)
    colors = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}
    painter = FrontierOverlay()
    assert painter.update(tree, colors, 0.5) == (0, 0, 40, 50)
    assert painter.update(tree, colors, 0.5) is None              # nothing changed, nothing drawn
    partial = 0
    for _ in range(60):
        apply_random_op(tree, rng)
        box = painter.update(tree, colors, 0.5)
        partial += box is not None and box != (0, 0, 40, 50)
        full = FrontierOverlay()
        full.update(tree, colors, 0.5)
        assert np.array_equal(painter.pixels, full.pixels)
    assert partial > 10
