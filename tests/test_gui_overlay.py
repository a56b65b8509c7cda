"""The overlay buffer redrawn only where regions changed equals a full redraw; atom geometry
follows brush strokes exactly."""
import numpy as np
import pytest

from core.tree import ATOM_LOG_LENGTH
from gui.overlay import FrontierOverlay, _compute_geometry, atom_geometry
from tests.test_tree import apply_random_op, random_disk, random_tree


@pytest.mark.parametrize("incremental_max", [None, 1.0])
def test_incremental_overlay_equals_a_full_redraw_after_random_edits(monkeypatch, incremental_max):
    if incremental_max is not None:       # geometry always updated, never rebuilt (the image is tiny)
        monkeypatch.setattr("gui.overlay.INCREMENTAL_MAX", incremental_max)
    rng = np.random.default_rng(5)
    tree = random_tree(rng, n_atoms=20, shape=(40, 50))
    tree.set_granularity(0.5)
    colors = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}
    painter = FrontierOverlay()
    assert painter.update(tree, colors, 0.5) == (0, 0, 40, 50)
    assert painter.update(tree, colors, 0.5) is None              # nothing changed, nothing drawn
    partial, history = 0, []
    for step in range(90):
        for _ in range(1 if step % 5 else 2):                     # sometimes two edits between draws
            if rng.random() < 0.25 and history:
                tree.undo(history.pop())
            else:
                edit = apply_random_op(tree, rng)
                if edit is not None:
                    history.append(edit)
        box = painter.update(tree, colors, 0.5)
        partial += box is not None and box != (0, 0, 40, 50)
        full = FrontierOverlay()
        full.update(tree, colors, 0.5)
        assert np.array_equal(painter.pixels, full.pixels)
    assert partial > 10


def test_atom_geometry_follows_brush_strokes_and_their_undo(monkeypatch):
    monkeypatch.setattr("gui.overlay.INCREMENTAL_MAX", 1.0)      # always update (the image is tiny)
    rng = np.random.default_rng(8)
    tree = random_tree(rng, n_atoms=15, shape=(40, 50))
    tree.set_granularity(0.5)
    geometry = atom_geometry(tree)
    history = []
    for step in range(30):
        # between looks: one change, or more than the tree's change log holds (a full comparison)
        for _ in range(1 if step % 4 else int(rng.integers(2, ATOM_LOG_LENGTH + 5))):
            if rng.random() < 0.3 and history:
                tree.undo(history.pop())
            else:
                edit = tree.paint(random_disk(tree.shape, rng), int(rng.choice(tree.frontier())))
                if edit is not None:
                    history.append(edit)
        assert atom_geometry(tree) is geometry                  # updated, not rebuilt
        fresh = _compute_geometry(tree.atom_map, tree.n_atoms)
        pairs = lambda g: set(zip(g.first.tolist(), g.second.tolist()))
        assert pairs(geometry) == pairs(fresh)
        assert np.array_equal(geometry.atom_first, tree.atom_map.ravel()[geometry.first])
        assert np.array_equal(geometry.counts, fresh.counts)
        for atom in range(tree.n_atoms):
            assert sorted(geometry.pixels([atom]).tolist()) == sorted(fresh.pixels([atom]).tolist())
            if fresh.counts[atom]:
                box, tight = geometry.boxes[atom], fresh.boxes[atom]
                assert box[0] <= tight[0] and box[1] <= tight[1] and box[2] >= tight[2] and box[3] >= tight[3]
