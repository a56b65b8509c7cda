"""The on-disk feature cache: hits return identical arrays without loading the model, damaged
entries are rebuilt, and the folder stays under its size limit by evicting the least recently used."""
from __future__ import annotations

import os

import numpy as np
import pytest

from core.encoders.diffusion import DiffusionEncoder
from core.encoders.feature_cache import FeatureCache, image_digest
from core.features import Features
from tests.tiny_models import tiny_model


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.random((40, 64, 3)) * 255).astype(np.uint8)


def encoder(tmp_path, **kwargs) -> DiffusionEncoder:
    return DiffusionEncoder(model=str(tiny_model("sd1")), cache_dir=str(tmp_path), **kwargs)


def test_cache_hit_returns_identical_arrays_without_loading_the_model(tmp_path, image):
    first = encoder(tmp_path, with_attention=True).encode(image)
    again = encoder(tmp_path, with_attention=True)
    second = again.encode(image)
    assert again._model is None  # served from disk
    assert np.array_equal(first.tokens, second.tokens)
    assert first.attention.keys() == second.attention.keys()
    for grid in first.attention:
        assert np.array_equal(first.attention[grid], second.attention[grid])
    assert (second.encoder, second.image_size, second.meta) == (first.encoder, first.image_size, first.meta)


def test_cache_key_separates_settings_and_images(tmp_path, image):
    encoder(tmp_path).encode(image)
    other_seed = encoder(tmp_path, seed=7)
    other_seed.encode(image)
    assert other_seed._model is not None
    other_image = encoder(tmp_path)
    other_image.encode(image[::-1].copy())
    assert other_image._model is not None
    assert len(list((tmp_path / "features").glob("*.npz"))) == 3


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not really a zip", None])
def test_damaged_entry_is_rebuilt(tmp_path, image, damage):
    first = encoder(tmp_path).encode(image)
    (entry,) = (tmp_path / "features").glob("*.npz")
    if damage is None:  # a valid .npz that lacks the expected arrays
        np.savez(entry, something=np.zeros(3))
    else:
        entry.write_bytes(damage)
    rebuilt_by = encoder(tmp_path)
    rebuilt = rebuilt_by.encode(image)
    assert rebuilt_by._model is not None
    np.testing.assert_array_equal(rebuilt.tokens, first.tokens)
    with np.load(entry, allow_pickle=False) as data:
        assert np.array_equal(data["tokens"], first.tokens)


def features(seed: int) -> Features:
    tokens = np.random.default_rng(seed).random((16, 16, 256)).astype(np.float32)  # 256 KiB
    return Features(tokens=tokens, image_size=(64, 64), encoder="test")


def test_least_recently_used_entries_are_evicted(tmp_path):
    cache = FeatureCache(tmp_path, size_limit_mb=1)  # room for three 256 KiB entries
    for seed in range(3):
        cache.get_or_compute({"seed": seed}, lambda seed=seed: features(seed))
    for age, seed in enumerate(range(3)):
        os.utime(cache.path_for({"seed": seed}), (1000 + age, 1000 + age))
    hit = cache.get_or_compute({"seed": 0}, lambda: pytest.fail("should be a cache hit"))
    assert np.array_equal(hit.tokens, features(0).tokens)
    cache.get_or_compute({"seed": 3}, lambda: features(3))
    cache.get_or_compute({"seed": 4}, lambda: features(4))
    kept = {seed for seed in range(5) if cache.path_for({"seed": seed}).exists()}
    assert kept == {0, 3, 4}
    assert sum(p.stat().st_size for p in tmp_path.glob("*.npz")) <= 1024 * 1024


def test_image_digest_depends_on_content_and_shape():
    a = np.zeros((4, 6, 3), np.uint8)
    assert image_digest(a) == image_digest(a.copy())
    assert image_digest(a) != image_digest(np.zeros((6, 4, 3), np.uint8))
    b = a.copy()
    b[0, 0, 0] = 1
    assert image_digest(a) != image_digest(b)
