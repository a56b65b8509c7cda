"""Recursive NCut: planted clusters, parity with the dense reference, pruning = fresh run."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from core.cut.hierarchy import label_tokens, leaves_at
from core.cut.ncut import best_bipartition, cosine_affinity, diffcut_hierarchy, ncut_hierarchy, second_eigenvector
from core.errors import Cancelled
from core.jobs import CancelToken
from tests.reference_ncut import reference_labels


def planted(seed: int, h: int = 16, w: int = 16, k: int = 4, c: int = 32, noise: float = 0.3):
    """Voronoi regions, each with its own random direction plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    centres = rng.choice(h * w, k, replace=False)
    yy, xx = np.divmod(np.arange(h * w), w)
    d = (yy[None] - (centres // w)[:, None]) ** 2 + (xx[None] - (centres % w)[:, None]) ** 2
    truth = np.argmin(d, axis=0)
    directions = rng.normal(size=(k, c))
    return directions[truth] + noise * rng.normal(size=(h * w, c)), truth


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renaming the labels."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("seed", range(5))
def test_planted_regions_are_recovered_exactly(seed):
    feats, truth = planted(seed)
    labels = label_tokens(diffcut_hierarchy(feats, 10, 0.5), (16, 16), 0.5)
    assert same_partition(labels, truth)


def test_constant_image_is_one_segment():
    root = diffcut_hierarchy(np.ones((64, 8)), 10, 0.9)
    assert not root.children and len(leaves_at(root, 0.9)) == 1


def test_deterministic_across_runs():
    feats, _ = planted(7, 24, 24, k=6, noise=1.0)
    a = label_tokens(diffcut_hierarchy(feats, 10, 0.8), (24, 24), 0.8)
    b = label_tokens(diffcut_hierarchy(feats, 10, 0.8), (24, 24), 0.8)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("seed,tau,alpha", [(0, 0.5, 10), (1, 0.3, 10), (2, 0.7, 5), (3, 0.5, 1),
                                            (4, 0.6, 10), (5, 0.5, 15)])
def test_partition_equals_the_dense_reference(seed, tau, alpha):
    feats, _ = planted(seed, 12, 12, k=5, noise=[0.3, 0.9, 1.5][seed % 3])
    ours = label_tokens(diffcut_hierarchy(feats, alpha, 0.9, reference_zero_rows=True), (12, 12), tau)
    assert same_partition(ours, reference_labels(feats, tau, alpha))


def test_zero_row_quirk_matches_the_reference():
    """Duplicated extreme tokens give exact zeros in the affinity; they stay on the 0 side."""
    feats, _ = planted(11, 10, 10, k=4, noise=0.6)
    feats[:3] = feats[0]
    feats[-3:] = -feats[0]
    aff = cosine_affinity(feats, 10)
    assert (aff == 0).any(axis=1).sum() >= 2
    ours = label_tokens(diffcut_hierarchy(feats, 10, 0.9, reference_zero_rows=True), (10, 10), 0.5)
    assert same_partition(ours, reference_labels(feats, 0.5, 10))
    fixed = label_tokens(diffcut_hierarchy(feats, 10, 0.9), (10, 10), 0.5)
    assert not same_partition(fixed, ours)  # the default does not drop those tokens


def test_best_bipartition_matches_the_quadratic_forms():
    feats, _ = planted(3, 10, 10)
    aff = cosine_affinity(feats, 10).astype(np.float64)
    v = second_eigenvector(aff)
    side, value = best_bipartition(aff, v)
    d = aff.sum(1)
    x = np.where(side, 1.0, -1.0)
    k = d[side].sum() / d.sum()
    y = (1 + x) - k / (1 - k) * (1 - x)
    assert value == pytest.approx((y @ (np.diag(d) - aff) @ y) / (y @ (d * y)), rel=1e-9)
    dense = np.linalg.eigh(np.eye(100) - aff / np.sqrt(np.outer(d, d)))[1][:, 1] / np.sqrt(d)
    assert abs(np.dot(dense / np.linalg.norm(dense), v / np.linalg.norm(v))) > 1 - 1e-9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), tau=st.floats(0.05, 0.85), alpha=st.sampled_from([1.0, 5.0, 10.0]))
def test_pruning_the_deep_tree_equals_a_fresh_run(seed, tau, alpha):
    feats, _ = planted(seed, 10, 10, k=int(seed % 5) + 2, noise=1.0)
    aff = cosine_affinity(feats, alpha)
    for quirk in (False, True):
        deep = label_tokens(ncut_hierarchy(aff, 0.9, drop_zero_rows=quirk), (10, 10), tau)
        fresh = label_tokens(ncut_hierarchy(aff, tau, drop_zero_rows=quirk), (10, 10), tau)
        assert np.array_equal(deep, fresh)


def test_cancel_stops_the_recursion():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        diffcut_hierarchy(planted(0)[0], 10, 0.8, cancel=token)
