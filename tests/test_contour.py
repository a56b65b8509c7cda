"""Contour atoms, greedy contour merges, the contour method's tree, and speck absorption."""
import numpy as np
import pytest
import skimage.data

from core.atoms import atom_map, contour_atoms
from core.cut.contour import contour_split, merge_forest
from core.encoders.classic import ClassicEncoder
from core.pipeline import Segmenter, segment
from core.refine import SPECK_AREA, STRONG_CONTRAST, absorb_specks
from core.settings import Settings
from tests.test_pipeline import nested_partition_counts


def planted(size: int = 160) -> np.ndarray:
    """Two flat halves (dark red, dark blue), a small white square in the red one and a
    faint small square (2 grey levels) in the blue one, with a little noise."""
    rng = np.random.default_rng(0)
    image = np.zeros((size, size, 3), np.float64)
    image[:, : size // 2] = (120, 30, 30)
    image[:, size // 2:] = (30, 30, 120)
    image[20:32, 20:32] = 250                            # strong: its own region
    image[100:106, 110:116] = (32, 32, 122)              # faint: a speck, never shown
    image += rng.normal(0, 1.5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_atoms_partition_the_image_and_follow_the_strong_edges():
    image = planted()
    graph = contour_atoms(image, 64)
    assert graph.labels.shape == image.shape[:2] and graph.labels.min() == 0
    assert graph.sizes.sum() == image.shape[0] * image.shape[1]
    assert set(np.unique(graph.labels)) == set(range(graph.n))
    left, right = graph.labels[:, :80], graph.labels[:, 80:]
    assert not set(np.unique(left)) & set(np.unique(right))   # no atom crosses the middle edge
    assert np.all(graph.edges[:, 0] < graph.edges[:, 1])
    assert atom_map(graph, (320, 320)).shape == (320, 320)


def test_merges_keep_groups_apart_and_heights_only_grow():
    graph = contour_atoms(planted(), 64)
    group = np.zeros(graph.n, dtype=int)               # one group: everything
    merges, heights = merge_forest(graph, group)
    assert len(merges) == graph.n - 1 and np.all(np.diff(heights) >= -1e-9)
    halves = np.array([np.bincount(graph.labels[:, :80].ravel(), minlength=graph.n)[a] > 0
                       for a in range(graph.n)]).astype(int)
    merges, _ = merge_forest(graph, halves)
    assert len(merges) == graph.n - 2                  # two roots, one per group


def test_contour_method_nests_shows_the_strong_square_and_not_the_faint_one():
    image = planted()
    tree = segment(image, Settings(method="contour", classic_tokens=16))
    assert nested_partition_counts(tree)[-1] >= 3
    tree.set_granularity(Settings.tau)
    labels, _ = tree.frontier_labels()
    square = np.bincount(labels[20:32, 20:32].ravel()).argmax()
    assert 0.8 * 144 <= (labels[20:32, 20:32] == square).sum() and (labels == square).sum() < 200
    faint = labels[101:105, 111:115]
    assert (labels == faint[0, 0]).sum() > 1000        # part of the blue half, not its own region


def test_contour_split_cuts_a_region_along_its_strongest_boundary():
    graph = contour_atoms(planted(), 64)
    side = contour_split(graph, np.arange(graph.n))
    mask = np.isin(graph.labels, np.flatnonzero(side))
    mask = mask if mask.sum() < mask.size / 2 else ~mask
    half = np.zeros_like(mask)
    half[:, :80] = True
    square = np.zeros_like(mask)
    square[20:32, 20:32] = True

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()
    assert max(iou(mask, half), iou(mask, ~half), iou(mask, square)) > 0.8
    left = np.bincount(graph.labels[:, :80].ravel(), minlength=graph.n) > 0
    both = np.flatnonzero(left)[:1].tolist() + np.flatnonzero(~left)[:1].tolist()
    two = contour_split(graph, np.array(both))
    assert two is not None and two.sum() == 1
    assert contour_split(graph, np.array([0])) is None


def test_the_cutter_splits_a_finest_region_of_the_contour_tree():
    image = skimage.data.coffee()[::4, ::4].copy()
    settings = Settings(method="contour", classic_tokens=16)
    segmenter = Segmenter(settings)
    features = segmenter.encode(image)
    assert features.atoms is not None
    tree = segmenter.cut(image, features)
    cutter = segmenter.cutter(image, features, tree.shape)
    leaf = max(tree.frontier(), key=tree.area)
    labels = cutter(tree.mask(leaf))
    assert labels is not None and len(np.unique(labels)) == 2


def test_the_walk_pipeline_encodes_no_atoms():
    assert ClassicEncoder(16).encode(planted()).atoms is None


def test_weak_specks_are_absorbed_and_sharp_small_things_stay():
    image = planted()
    labels = np.zeros(image.shape[:2], np.int32)
    labels[:, 80:] = 1
    labels[20:32, 20:32] = 2                            # the white square: sharp outline
    labels[60:64, 40:44] = 3                            # a weak speck inside the red half
    labels[100:106, 110:116] = 4                        # the faint square: weak outline
    out = absorb_specks(labels, image, area=0.01)
    assert (out[20:32, 20:32] == 2).all()
    assert (out[60:64, 40:44] == 0).all() and (out[100:106, 110:116] == 1).all()
    assert (out[labels < 2] == labels[labels < 2]).all()
    assert np.array_equal(absorb_specks(labels, image, area=1e-9), labels)


def small_piece_outlines(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Mean Lab step across the outline of every 4-connected piece under SPECK_AREA."""
    from skimage.color import rgb2lab
    from skimage.measure import label as connected
    pieces = connected(labels + 1, connectivity=1, background=0) - 1
    lab = rgb2lab(image)
    n = pieces.max() + 1
    total, count = np.zeros(n), np.zeros(n)
    for a, b, la, lb in ((pieces[:, :-1], pieces[:, 1:], lab[:, :-1], lab[:, 1:]),
                         (pieces[:-1], pieces[1:], lab[:-1], lab[1:])):
        edge = a != b
        step = np.linalg.norm(la - lb, axis=-1)[edge]
        for side in (a[edge], b[edge]):
            total += np.bincount(side, step, n)
            count += np.bincount(side, minlength=n)
    small = np.bincount(pieces.ravel()) < SPECK_AREA * labels.size
    return total[small] / np.maximum(count[small], 1)


@pytest.mark.parametrize("method", ["walk", "atomwalk"])
def test_at_the_default_granularity_every_speck_has_a_sharp_outline(monkeypatch, method):
    image = skimage.data.astronaut()
    tree = segment(image, Settings(method=method))
    labels, _ = tree.frontier_labels()
    outlines = small_piece_outlines(labels, image)
    assert np.mean(outlines >= STRONG_CONTRAST) >= 0.9
    tree.set_granularity(1.0)
    tree.check_invariants()                             # absorbed specks nest at every granularity
    import core.pipeline                                # the same without absorbing: weak specks
    monkeypatch.setattr(core.pipeline, "absorb_specks", lambda labels, image: labels)
    labels, _ = segment(image, Settings(method=method)).frontier_labels()
    assert np.mean(small_piece_outlines(labels, image) >= STRONG_CONTRAST) < 0.5


def test_pixels_of_an_absorbed_speck_follow_their_nearest_neighbour_down_the_tree():
    from core.pipeline import nearest_choice
    width = 20
    pixels = np.arange(10 * width)
    chosen = (pixels % width >= 10).astype(np.int64)          # left half child 0, right half 1
    orphan = np.zeros(len(pixels), bool)
    orphan[[3 * width + 16, 3 * width + 17, 4 * width + 16]] = True   # a speck on the right
    orphan[[7 * width + 1]] = True                                    # one on the left
    got = nearest_choice(pixels, np.where(orphan, -1, chosen), orphan, width)
    assert got.tolist() == [1, 1, 1, 0]
