"""Random-walk NCut: k-step affinity, stationary distribution, automatic stopping, planted blocks."""
import numpy as np
import pytest

from core.cut.hierarchy import label_tokens
from core.cut.ncut import best_bipartition, second_eigenvector
from core.cut.walk import (random_split_ncut, split_ratio, stationary_distribution, transition_matrix,
                           walk_affinity, walk_hierarchy)
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
    side, ratio = split_ratio(w)
    plain_side, plain_ncut = best_bipartition(p, second_eigenvector(p))
    assert np.array_equal(side, plain_side)
    assert ratio * random_split_ncut(w) == pytest.approx(plain_ncut)
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
    grid = (12, 16)
    planted = planted_blocks(grid, 2, 3)
    att = planted_attention(planted, [grid, (6, 8)], seed=steps)
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
    centres = rng.normal(size=(4, 8))
    tokens = centres[planted] + rng.normal(0, 0.2, (*grid, 8))
    feats = Features(tokens.astype(np.float32), grid, "classic")
    p, pi = transition_matrix(feats, alpha=10.0)
    assert np.allclose(p.sum(1), 1)
    assert np.allclose(pi @ p, pi) and np.allclose(pi, stationary_distribution(p))
    root = walk_hierarchy(feats, Settings(method="walk"))
    assert same_partition(label_tokens(root, grid, Settings().tau), planted)
