"""DiffSeg as the paper runs it: on the largest attention grid, pixels by the reference's bilinear
upsampling and argmax, per-iteration KL thresholds, the method's own timestep; checked against a
literal re-implementation of the reference's label step (tests/reference_diffseg.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.cut.diffseg import attention_grid, pixel_labels
from core.cut.hierarchy import CutNode
from core.features import Features
from core.metrics import contingency
from core.pipeline import Segmenter
from core.settings import Settings
from tests.reference_diffseg import reference_labels
from tests.tiny_models import tiny_model


def voronoi(side: int, seeds: int, rng) -> np.ndarray:
    """(side, side) labels of `seeds` random Voronoi cells."""
    points = rng.random((seeds, 2)) * side
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    return np.argmin((yy[..., None] - points[:, 0]) ** 2 + (xx[..., None] - points[:, 1]) ** 2, axis=-1)


def attention(labels: np.ndarray, sizes: list[int], rng, contrast: float = 4.0, sigma: float = 0.25):
    """Row-stochastic square attention per resolution: within-cell, decaying with distance, noisy."""
    out, side = {}, labels.shape[0]
    for r in sizes:
        idx = ((np.arange(r) + 0.5) * side / r).astype(int)
        lab = labels[np.ix_(idx, idx)].ravel()
        yy, xx = np.divmod(np.arange(r * r), r)
        d2 = ((yy[:, None] - yy[None]) ** 2 + (xx[:, None] - xx[None]) ** 2) / r ** 2
        logits = contrast * (lab[:, None] == lab[None]) - d2 / (2 * sigma ** 2) + rng.normal(0, 0.5, (r * r, r * r))
        p = np.exp(logits - logits.max(1, keepdims=True))
        out[(r, r)] = (p / p.sum(1, keepdims=True)).astype(np.float32)
    return out


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    n = contingency(a.ravel(), b.ravel()).astype(float)
    pairs = lambda x: (x * (x - 1) / 2).sum()
    index, rows, cols = pairs(n), pairs(n.sum(1)), pairs(n.sum(0))
    expected = rows * cols / pairs(np.array([n.sum()]))
    return float((index - expected) / ((rows + cols) / 2 - expected))


@pytest.mark.parametrize("seed, cells, thresholds", [(0, 7, (1.1, 1.1, 1.1)), (1, 9, (0.9, 0.9, 0.9)),
                                                     (2, 9, (1.1, 0.9))])
def test_pixel_labels_equal_the_reference_label_step(seed, cells, thresholds):
    """A square input whose largest attention grid is 32 x 32 (a 256 px SD 1.x input; the
    feature tokens are 8 x 8): the shown segments equal the reference's labels."""
    rng = np.random.default_rng(seed)
    att = attention(voronoi(32, cells, rng), [32, 16, 8, 4], rng)
    expected = reference_labels(att, 32, 256, list(thresholds))
    features = Features(rng.random((8, 8, 4)).astype(np.float32), (256, 256), "synthetic", attention=att)
    image = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    settings = Settings(encoder="diffusion", method="diffseg", kl_thresholds=thresholds)
    tree = Segmenter(settings).cut(image, features)
    tree.check_invariants()
    got = tree.frontier_labels()[0]
    assert len(np.unique(expected)) >= 4
    assert adjusted_rand(got, expected) >= 0.99
    tree.set_granularity(0.0)
    assert len(tree.frontier()) == 1
    sizes = []
    for granularity in np.linspace(0.01, settings.tau, 20):
        tree.set_granularity(granularity)
        sizes.append(len(tree.frontier()))
    assert sizes == sorted(sizes) and sizes[-1] == len(np.unique(got))


def test_the_thresholds_are_the_iterations():
    rng = np.random.default_rng(3)
    att = attention(voronoi(16, 8, rng), [16, 8, 4], rng)
    features = Features(rng.random((4, 4, 4)).astype(np.float32), (128, 128), "synthetic", attention=att)
    image = np.zeros((128, 128, 3), np.uint8)
    counts = {t: len(Segmenter(Settings(encoder="diffusion", method="diffseg", kl_thresholds=t))
                     .cut(image, features).frontier()) for t in ((0.3,), (0.3, 0.3, 0.3), (2.0, 2.0, 2.0))}
    assert counts[(0.3,)] >= counts[(0.3, 0.3, 0.3)] > counts[(2.0, 2.0, 2.0)]


def test_the_largest_attention_grid_is_chosen_for_any_layout():
    def grid(shapes):
        return attention_grid(Features(np.zeros((2, 2, 1), np.float32), (8, 8), "x",
                                       attention={s: np.zeros(0) for s in shapes}))
    assert grid([(8, 8), (64, 64), (32, 32), (16, 16)]) == (64, 64)        # SD 1.x at 512 px
    assert grid([(32, 32), (64, 64)]) == (64, 64)                          # SDXL at 1024 px
    assert grid([(24, 32), (48, 64), (12, 16)]) == (48, 64)                # keep_aspect
    assert grid([(128, 128), (64, 64), (32, 32)]) == (64, 64)              # SD 1.x at 1024 px: bounded
    assert grid([(96, 128), (48, 64)]) == (48, 64)


def test_pixels_in_row_chunks_equal_one_full_upsampling(monkeypatch):
    import core.cut.diffseg as diffseg
    rng = np.random.default_rng(4)
    maps = rng.random((5, 6 * 8))
    leaves = [CutNode(np.zeros(0, int), signal=m) for m in maps]
    full = F.interpolate(torch.from_numpy(maps.reshape(1, 5, 6, 8)), size=(50, 70), mode="bilinear",
                         align_corners=False)[0].argmax(0).numpy()
    monkeypatch.setattr(diffseg, "PIXEL_ROWS", 7)
    assert np.array_equal(pixel_labels(leaves, (6, 8), (50, 70)), full)


@pytest.mark.parametrize("method, timestep", [("diffseg", 300), ("diffcut", 50), ("walk", 50)])
def test_each_method_reads_the_unet_at_its_papers_timestep(method, timestep, tmp_path):
    from core.encoders.diffusion import DiffusionEncoder
    settings = Settings(encoder="diffusion", model=str(tiny_model("sd1")), method=method, cache_dir=str(tmp_path))
    assert settings.diffusion_timestep == timestep
    assert settings.replace(timestep=120).diffusion_timestep == 120
    assert DiffusionEncoder.from_settings(settings).timestep == timestep


def test_diffseg_on_a_tiny_model_runs_at_its_largest_attention_grid_and_caches_by_timestep(tmp_path):
    """The real encoder (tiny SD 1.x, 128 px, attention at 16, 8, 4): the tree's tokens live on
    the 16 x 16 grid, the features record t = 300, and another timestep is another cache entry."""
    from core.encoders.diffusion import DiffusionEncoder
    rng = np.random.default_rng(5)
    image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    settings = Settings(encoder="diffusion", model=str(tiny_model("sd1")), method="diffseg", cache_dir=str(tmp_path))
    segmenter = Segmenter(settings)
    features = segmenter.encode(image)
    assert features.meta["timestep"] == 300 and not features.meta["noise"]
    assert attention_grid(features) == max(features.attention, key=lambda s: s[0] * s[1])
    assert attention_grid(features)[0] * attention_grid(features)[1] > features.grid[0] * features.grid[1]
    tree = segmenter.cut(image, features)
    tree.check_invariants()
    other = DiffusionEncoder.from_settings(settings.replace(timestep=50))
    other.encode(image)
    assert other._model is not None                                # not served from t = 300's entry
    again = DiffusionEncoder.from_settings(settings.replace(timestep=300))
    again.encode(image)
    assert again._model is None                                    # t = 300 explicitly is the same entry
