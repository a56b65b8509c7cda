"""DiffSeg: aggregation, anchor grid, KL and merging against direct computations; planted blocks."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import entropy

from core.cut.diffseg import (aggregate_attention, anchor_grid, argmax_labels, diffseg_hierarchy,
                              kl_matrix, merge_anchors, merge_greedy, resolution_weights,
                              symmetric_kl)
from core.cut.hierarchy import label_tokens, leaves_at
from core.errors import CutTreeError
from core.features import Features
from core.metrics import contingency
from core.settings import Settings


def planted_blocks(grid: tuple[int, int], rows: int = 2, cols: int = 2) -> np.ndarray:
    """An (h, w) label map of rows x cols rectangular blocks."""
    h, w = grid
    r = np.arange(h) * rows // h
    c = np.arange(w) * cols // w
    return r[:, None] * cols + c[None, :]


def planted_attention(blocks: np.ndarray, resolutions: list[tuple[int, int]], contrast: float = 6.0,
                      seed: int = 0) -> dict[tuple[int, int], np.ndarray]:
    """Row-stochastic attention where every token attends mostly within its own block."""
    rng = np.random.default_rng(seed)
    out = {}
    for hr, wr in resolutions:
        rows = np.arange(hr) * blocks.shape[0] // hr
        cols = np.arange(wr) * blocks.shape[1] // wr
        lab = blocks[np.ix_(rows, cols)].ravel()
        logits = contrast * (lab[:, None] == lab[None, :]) + rng.normal(0, 0.3, (lab.size, lab.size))
        p = np.exp(logits)
        out[(hr, wr)] = (p / p.sum(1, keepdims=True)).astype(np.float32)
    return out


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    n = contingency(a, b)
    return bool(((n > 0).sum(0) == 1).all() and ((n > 0).sum(1) == 1).all())


def test_aggregation_agrees_with_torch_interpolation():
    grid = (8, 12)
    res = [(8, 12), (4, 6), (2, 3)]
    att = planted_attention(planted_blocks(grid), res, seed=1)
    weights = resolution_weights(res)
    expected = torch.zeros(96, 96, dtype=torch.float64)
    for (hr, wr), wgt in zip(res, weights):
        keys = torch.from_numpy(att[(hr, wr)]).double().reshape(-1, 1, hr, wr)
        up = F.interpolate(keys, size=grid, mode="bilinear", align_corners=False).reshape(hr, wr, -1)
        up = up / up.sum(-1, keepdim=True)
        up = up.repeat_interleave(grid[0] // hr, 0).repeat_interleave(grid[1] // wr, 1)
        expected += wgt * up.reshape(96, 96)
    got = aggregate_attention(att, grid)
    assert np.allclose(got, expected.numpy(), atol=1e-6)
    assert np.allclose(got.sum(1), 1, atol=1e-5)
    assert weights == pytest.approx(np.array([np.sqrt(96), np.sqrt(24), np.sqrt(6)]) / (np.sqrt(96) + np.sqrt(24) + np.sqrt(6)))


def test_reference_weights_on_square_grids():
    assert resolution_weights([(64, 64), (32, 32), (16, 16), (8, 8)]) == pytest.approx(
        np.array([64, 32, 16, 8]) / 120)


def test_anchor_grid_matches_the_reference_on_64_and_generalises():
    ids = anchor_grid((64, 64))
    rows, cols = np.divmod(ids, 64)
    coords = np.linspace(1, 61, 16)
    assert len(ids) == 256
    assert np.array_equal(rows, np.repeat(coords, 16)) and np.array_equal(cols, np.tile(coords, 16))
    rows, cols = np.divmod(anchor_grid((32, 48)), 48)
    assert sorted(set(rows)) == list(range(0, 31, 2))   # (31 // 15) = 2, start 0
    assert sorted(set(cols)) == list(range(1, 47, 3))   # (47 // 15) = 3, start (47 - 45) // 2 = 1
    assert len(anchor_grid((5, 20))) == 5 * 16          # short side: every row


def test_kl_matrix_agrees_with_direct_and_scipy():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(30), size=4)
    q = rng.dirichlet(np.ones(30), size=5)
    direct = np.array([[symmetric_kl(a, b) for b in q] for a in p])
    assert np.allclose(kl_matrix(p, q), direct, atol=1e-12)
    assert direct[1, 2] == pytest.approx((entropy(p[1], q[2]) + entropy(q[2], p[1])) / 2)
    assert np.allclose(np.diag(kl_matrix(p, p)), 0, atol=1e-12)


def test_iteration_zero_averages_every_map_within_the_threshold():
    rng = np.random.default_rng(4)
    maps = rng.dirichlet(np.ones(20) * 0.5, size=20).astype(np.float32)
    anchors = np.array([0, 7, 13])
    got = merge_anchors(maps, anchors, threshold=1.0, chunk=2)
    for row, a in zip(got, anchors):
        marked = [i for i in range(20) if symmetric_kl(maps[a].astype(float), maps[i].astype(float)) < 1.0]
        assert a in marked
        assert np.allclose(row, maps[marked].mean(0), atol=1e-6)


def test_later_iterations_walk_greedily_and_reuse_matched_proposals():
    a, b, c = np.array([0.7, 0.2, 0.1]), np.array([0.45, 0.45, 0.1]), np.array([0.2, 0.7, 0.1])
    threshold = (symmetric_kl(a, b) + symmetric_kl(a, c)) / 2
    assert symmetric_kl(b, c) < threshold < symmetric_kl(a, c)
    merged = merge_greedy(np.array([a, b, c]), threshold)
    # a anchors {a, b}; b is matched, so c anchors {b, c}: b is averaged twice
    assert np.allclose(merged, [(a + b) / 2, (b + c) / 2])


def test_argmax_upsamples_like_the_reference():
    props = np.random.default_rng(5).random((3, 16))
    low = argmax_labels(props, (4, 4))
    assert np.array_equal(low.ravel(), props.argmax(0))
    up = argmax_labels(props, (4, 4), size=(32, 32))
    t = F.interpolate(torch.from_numpy(props.reshape(1, 3, 4, 4)), size=(32, 32), mode="bilinear",
                      align_corners=False)
    assert np.array_equal(up, t[0].argmax(0).numpy())


@pytest.mark.parametrize("grid, blocks", [((16, 16), (2, 2)), ((12, 20), (2, 3))])
def test_recovers_planted_blocks_and_merges_them_coarser(grid, blocks):
    planted = planted_blocks(grid, *blocks)
    res = [grid, (grid[0] // 2, grid[1] // 2), (grid[0] // 4, grid[1] // 4)]
    feats = Features(np.zeros((*grid, 1), np.float32), grid, "synthetic",
                     attention=planted_attention(planted, res))
    root = diffseg_hierarchy(feats, Settings(method="diffseg"))
    labels = label_tokens(root, grid, Settings().tau)
    assert same_partition(labels, planted)
    assert len(leaves_at(root, 0.0)) == 1
    sizes = [len(leaves_at(root, g)) for g in np.linspace(0.01, Settings().tau, 30)]
    assert sizes == sorted(sizes)
    for node in root.walk():
        if node.children:
            assert np.array_equal(np.sort(np.concatenate([c.tokens for c in node.children])), node.tokens)
            assert all(node.cost <= c.cost for c in node.children)


def test_without_attention_the_error_names_the_encoder():
    feats = Features(np.zeros((4, 4, 3), np.float32), (4, 4), "classic")
    with pytest.raises(CutTreeError, match="diffseg method needs self-attention.*classic"):
        diffseg_hierarchy(feats, Settings(method="diffseg"))


def test_wrongly_shaped_attention_is_rejected():
    with pytest.raises(CutTreeError, match="attention for grid 4x4 has shape"):
        aggregate_attention({(4, 4): np.ones((4, 4), np.float32)}, (4, 4))
