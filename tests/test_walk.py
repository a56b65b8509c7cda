"""Random-walk NCut: k-step affinity, stationary distribution, automatic stopping, planted blocks."""
import numpy as np
import pytest

from core.cut.hierarchy import label_tokens
from core.cut.ncut import best_bipartition, second_eigenvector
from core.cut.walk import (automatic_steps, partition_ncut, spatial_null, split_ratio,
                           squared_distances, stationary_distribution, step_variance,
                           transition_matrix, walk_affinity, walk_hierarchy)
from core.features import Features
from core.settings import Settings
from tests.test_diffseg import planted_attention, planted_blocks, same_partition


def symmetric_stochastic(n: int, seed: int) -> np.ndarray:
    """A symmetric, doubly stochastic P with two planted groups (symmetric Sinkhorn)."""
    rng = np.random.default_rng(seed)
    group = np.arange(n) < n // 3
    a = np.exp(3.0 * (group[:, None] == group[None, :]) + rng.normal(0, 0.5, (n, n)))
    a = (a + a.T) / 2
    for _ in range(500):
        d = np.sqrt(a.sum(1))
        a = a / d[:, None] / d[None, :]
    return a


def test_one_step_on_a_symmetric_p_is_the_plain_normalized_cut():
    p = symmetric_stochastic(40, seed=0)
    assert np.allclose(p.sum(1), 1) and np.allclose(p, p.T)
    w = walk_affinity(p, 1)
    assert np.allclose(w * 40, p)                   # pi is uniform, W_1 = P / N
    null = np.ones_like(w)
    side, ratio = split_ratio(w, null)
    plain_side, plain_ncut = best_bipartition(p, second_eigenvector(p))
    assert np.array_equal(side, plain_side)
    assert ratio * partition_ncut(null, side) == pytest.approx(plain_ncut)
    assert partition_ncut(p, side) == pytest.approx(plain_ncut)
    assert np.array_equal(np.sort(np.flatnonzero(side)), np.arange(13)) or \
        np.array_equal(np.sort(np.flatnonzero(~side)), np.arange(13))


def test_reversible_walk_from_a_symmetric_affinity():
    rng = np.random.default_rng(1)
    a = rng.random((30, 30))
    a = a + a.T
    p = a / a.sum(1, keepdims=True)
    pi = stationary_distribution(p)
    assert np.allclose(pi, a.sum(1) / a.sum())
    w3 = walk_affinity(p, 3)
    direct = pi[:, None] * np.linalg.matrix_power(p, 3)
    assert np.allclose(direct, direct.T)            # reversible: Pi P^k is symmetric
    assert np.allclose(w3, direct, atol=1e-7)
    assert np.allclose(walk_affinity(p, 1), a / a.sum())


def test_ncut_on_the_walk_affinity_is_the_escape_probability():
    rng = np.random.default_rng(2)
    p = rng.random((25, 25)) ** 4
    p /= p.sum(1, keepdims=True)                    # not reversible
    pi = stationary_distribution(p)
    assert np.allclose(pi @ p, pi)
    w = walk_affinity(p, 2, pi)
    assert np.allclose(w.sum(1), pi)               # degrees are the stationary distribution
    inside = np.arange(25) < 10
    p2 = p @ p
    escape = (pi[inside] @ p2[np.ix_(inside, ~inside)]).sum() / pi[inside].sum()
    back = (pi[~inside] @ p2[np.ix_(~inside, inside)]).sum() / pi[~inside].sum()
    cut = w[np.ix_(inside, ~inside)].sum()
    ncut = cut / w[inside].sum() + cut / w[~inside].sum()
    assert ncut == pytest.approx(escape + back)


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        walk_affinity(np.eye(3), 0)


@pytest.mark.parametrize("steps", [1, 3])
def test_recovers_planted_blocks_from_attention_at_the_automatic_threshold(steps):
    grid = (12, 18)
    planted = planted_blocks(grid, 2, 3)
    att = planted_attention(planted, [grid, (6, 9)], seed=steps)
    feats = Features(np.zeros((*grid, 1), np.float32), grid, "synthetic", attention=att)
    settings = Settings(method="walk")
    settings.walk_steps = steps
    root = walk_hierarchy(feats, settings)
    assert same_partition(label_tokens(root, grid, settings.tau), planted)


def test_structureless_attention_stays_whole_at_the_automatic_threshold():
    grid = (10, 10)
    rng = np.random.default_rng(7)
    p = np.exp(rng.normal(0, 0.3, (100, 100)))
    att = {grid: (p / p.sum(1, keepdims=True)).astype(np.float32)}
    feats = Features(np.zeros((*grid, 1), np.float32), grid, "synthetic", attention=att)
    root = walk_hierarchy(feats, Settings(method="walk"))
    assert len(np.unique(label_tokens(root, grid, Settings().tau))) == 1


def test_works_from_token_features_without_attention():
    grid = (12, 12)
    planted = planted_blocks(grid, 2, 2)
    rng = np.random.default_rng(3)
    centres = np.eye(8)[:4] + 0.3                  # four distinct feature directions
    tokens = centres[planted] + rng.normal(0, 0.1, (*grid, 8))
    feats = Features(tokens.astype(np.float32), grid, "classic")
    p, pi = transition_matrix(feats, alpha=10.0)
    assert np.allclose(p.sum(1), 1)
    assert np.allclose(pi @ p, pi) and np.allclose(pi, stationary_distribution(p))
    root = walk_hierarchy(feats, Settings(method="walk"))
    assert same_partition(label_tokens(root, grid, Settings().tau), planted)


def test_spatial_null_keeps_the_mean_squared_step_of_the_walk():
    grid = (9, 9)
    rows, cols = np.divmod(np.arange(81), 9)
    dist2 = (rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2
    p = (dist2 <= 1).astype(float)                  # nearest-neighbour walk (with staying put)
    p /= p.sum(1, keepdims=True)
    pi = stationary_distribution(p)
    var = (pi[:, None] * p * dist2).sum() / 2
    assert step_variance(p, pi, squared_distances(grid)) == pytest.approx(var)
    null = spatial_null(var, squared_distances(grid), steps=4)
    assert np.allclose(null, np.exp(-dist2 / (8 * var)), atol=1e-6)
    assert np.allclose(null, null.T)


def test_the_null_ratio_is_scale_free_on_a_structureless_grid():
    """Halving a small or a large featureless square costs the same ratio: 1."""
    for side in (6, 14):
        grid = (side, side)
        rows, cols = np.divmod(np.arange(side * side), side)
        dist2 = (rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2
        w = np.exp(-dist2 / 4.0)
        p = w / w.sum(1, keepdims=True)
        pi = stationary_distribution(p)
        walk = walk_affinity(p, 3, pi)
        half = cols < side // 2
        null = spatial_null(step_variance(p, pi, squared_distances(grid)), squared_distances(grid), 3)
        ratio = partition_ncut(walk, half) / partition_ncut(null, half)
        assert ratio == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("method", ["diffseg", "walk"])
def test_pipeline_builds_a_valid_segment_tree_from_attention_methods(method):
    from core.pipeline import Segmenter
    grid = (12, 18)
    planted = planted_blocks(grid, 2, 3)
    tokens = np.eye(6, dtype=np.float32)[planted] + 0.1
    feats = Features(tokens, (96, 144), "synthetic", attention=planted_attention(planted, [grid, (6, 9)]))
    image = np.random.default_rng(0).integers(0, 255, (96, 144, 3), dtype=np.uint8)
    settings = Settings(method=method)
    tree = Segmenter(settings, encoder=None).cut(image, feats)
    tree.check_invariants()
    labels, front = tree.frontier_labels()
    assert len(front) == 6
    assert same_partition(labels, np.kron(planted, np.ones((8, 8), int)))


def test_automatic_steps_spread_the_walk_over_a_tenth_of_the_image():
    assert automatic_steps(variance=1.0, grid=(32, 40)) == 16
    assert automatic_steps(variance=500.0, grid=(32, 48)) == 1        # attention-like jumps
    assert automatic_steps(variance=0.01, grid=(64, 64)) == 20        # capped


def test_split_cost_is_linear_up_to_the_default_then_logarithmic_to_the_deepest_ratio():
    from core.cut.walk import AUTO_RATIO, DEEPEST_RATIO, ratio_cost
    for ratio in np.linspace(0, AUTO_RATIO, 7):   # the default granularity and below: as before
        assert ratio_cost(ratio) == pytest.approx(Settings.tau * ratio / AUTO_RATIO)
    ratios = np.linspace(0, 2 * DEEPEST_RATIO, 200)
    costs = [ratio_cost(r) for r in ratios]
    assert np.all(np.diff(costs) > 0)                # continuous at the kink, strictly monotone
    assert ratio_cost(AUTO_RATIO) == pytest.approx(Settings.tau)
    assert ratio_cost(DEEPEST_RATIO) == pytest.approx(1.0)
    assert ratio_cost(0.4) < 0.8 < Settings.tau_max  # the old tau_max's ratio is inside the range


def test_the_deeper_range_refines_the_default_cut_and_stays_nested():
    import skimage.data
    from PIL import Image
    from core.pipeline import segment
    image = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((192, 128)))
    tree = segment(image, Settings())
    tree.set_granularity(Settings.tau)
    coarse = tree.frontier_labels()[0]
    tree.set_granularity(Settings.tau_max)
    fine = tree.frontier_labels()[0]
    assert fine.shape == coarse.shape == image.shape[:2]
    assert len(np.unique(fine)) > len(np.unique(coarse))
    for region in np.unique(fine):                  # every fine region inside one coarse region
        assert len(np.unique(coarse[fine == region])) == 1
