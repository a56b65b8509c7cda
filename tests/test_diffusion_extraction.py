"""Diffusion feature extraction on tiny SD 1.x and SDXL models saved to disk: faithfulness to the
reference's way (full pipeline, full UNet forward, plain forward hook), early stopping, token grids."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.encoders.diffusion import DiffusionEncoder
from core.encoders.extraction import image_tensor, input_size
from core.encoders.unet_layout import feature_layer, self_attention_layers
from tests.tiny_models import tiny_model


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 100x160 photo-like RGB image: smooth gradients plus a bright disc."""
    yy, xx = np.mgrid[0:100, 0:160]
    disc = ((yy - 50) ** 2 + (xx - 100) ** 2 < 30 ** 2) * 200
    rgb = np.stack([xx * 1.5, yy * 2.0, disc], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    """Shared by the module so that the empty-prompt embeddings are computed once per model."""
    return str(tmp_path_factory.mktemp("cache"))


def encoder(kind: str, cache_dir: str, **kwargs) -> DiffusionEncoder:
    """A diffusion encoder on a tiny model, without the feature cache."""
    return DiffusionEncoder(model=str(tiny_model(kind)), cache_dir=cache_dir, cache_size_mb=0, **kwargs)


def reference_features(kind: str, image: np.ndarray, timestep: int = 50, seed: int = 42) -> np.ndarray:
    """DiffCut's way (tools/ldm.py) with diffusers' own pipeline: all components, full UNet forward."""
    from diffusers import DDIMScheduler, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_model(kind))
    native = pipe.unet.config.sample_size * pipe.vae_scale_factor
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(native, native), mode="bilinear") * 2 - 1
    with torch.no_grad():
        latents = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=torch.Generator("cpu").manual_seed(seed))
        scheduler = DDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
        latents = scheduler.add_noise(latents, noise, torch.tensor([timestep]))
        kwargs = {}
        if kind == "sdxl":
            embeds, _, pooled, _ = pipe.encode_prompt("", do_classifier_free_guidance=False)
            time_ids = torch.tensor([[native, native, 0, 0, native, native]], dtype=embeds.dtype)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
        else:
            embeds, _ = pipe.encode_prompt("", "cpu", 1, do_classifier_free_guidance=False)
        captured = []
        handle = feature_layer(pipe.unet).register_forward_hook(lambda m, i, o: captured.append(o))
        out = pipe.unet(latents, torch.tensor([timestep]), encoder_hidden_states=embeds, **kwargs).sample
        handle.remove()
    assert out.shape == latents.shape  # the whole UNet ran, decoder included
    side = native // 32  # both families hook a layer at 1/32 of the input resolution
    return captured[0][0].reshape(side, side, -1).numpy()


@pytest.mark.parametrize("kind", ["sd1", "sdxl"])
def test_square_mode_reproduces_the_reference_with_early_stopping(kind, image, cache_dir):
    ours = encoder(kind, cache_dir, resize_mode="square").encode(image)
    expected = reference_features(kind, image)
    assert ours.tokens.dtype == np.float32
    assert ours.tokens.shape == expected.shape
    np.testing.assert_allclose(ours.tokens, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["sd1", "sdxl"])
def test_features_only_model_is_pruned_after_the_feature_layer(kind, image, cache_dir):
    enc = encoder(kind, cache_dir)
    enc.encode(image)
    unet = enc._model.unet
    assert unet.mid_block is None and len(unet.up_blocks) == 0
    assert unet.down_blocks[-1].downsamplers is None
    assert not any(p.is_meta for p in unet.parameters())


def test_keep_aspect_and_square_token_grids(image, cache_dir):
    # SD 1.x tiny: native 128 px, total stride 64, features at latent/4 (image/32)
    assert encoder("sd1", cache_dir).encode(image).grid == (2, 4)           # input 64 x 128
    assert encoder("sd1", cache_dir, resize_mode="square").encode(image).grid == (4, 4)
    # SDXL tiny: native 128 px, total stride 32, features at latent/4: 100x160 -> 80 -> 96 x 128
    features = encoder("sdxl", cache_dir).encode(image)
    assert features.grid == (3, 4)
    assert features.meta["input_size"] == [96, 128]
    assert features.image_size == (100, 160)
    portrait = np.ascontiguousarray(image.transpose(1, 0, 2))
    assert encoder("sdxl", cache_dir).encode(portrait).grid == (4, 3)


def test_input_size_rule():
    assert input_size(100, 160, 1024, 32, "square") == (1024, 1024)
    assert input_size(480, 640, 1024, 32, "keep_aspect") == (768, 1024)
    assert input_size(1000, 1000, 512, 64, "keep_aspect") == (512, 512)
    assert input_size(10, 4000, 512, 64, "keep_aspect") == (64, 512)   # never below one stride


def test_image_tensor_matches_bilinear_without_antialias(image):
    x = image_tensor(image, (64, 48))
    expected = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, size=(64, 48),
                             mode="bilinear", align_corners=False, antialias=False) * 2 - 1
    assert torch.equal(x, expected)
    assert image_tensor(image, (100, 160)).shape == (1, 3, 100, 160)


@pytest.mark.parametrize("kind, grids", [("sd1", {(8, 16), (4, 8), (2, 4), (1, 2)}), ("sdxl", {(6, 8), (3, 4)})])
def test_attention_maps_are_row_stochastic_per_resolution(kind, grids, image, cache_dir):
    with_maps = encoder(kind, cache_dir, with_attention=True).encode(image)
    plain = encoder(kind, cache_dir).encode(image)
    assert set(with_maps.attention) == grids
    for (h, w), matrix in with_maps.attention.items():
        assert matrix.dtype == np.float32 and matrix.shape == (h * w, h * w)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
        assert (matrix >= 0).all()
    # the recording processor does not change what the UNet computes
    np.testing.assert_allclose(with_maps.tokens, plain.tokens, rtol=1e-4, atol=1e-5)


def test_sd1_records_all_sixteen_self_attention_layers():
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_model("sd1"), subfolder="unet")
    assert len(self_attention_layers(unet)) == 16


@pytest.mark.parametrize("method, attention, noise", [("diffcut", False, True), ("diffseg", True, False),
                                                      ("walk", True, True)])
def test_from_settings_follows_the_method(method, attention, noise, image, cache_dir):
    from core.settings import Settings

    settings = Settings(encoder="diffusion", model=str(tiny_model("sd1")), method=method, cache_dir=cache_dir,
                        cache_size_mb=0, seed=5, timestep=300)
    enc = DiffusionEncoder.from_settings(settings)
    assert (enc.with_attention, enc.add_noise, enc.timestep, enc.seed) == (attention, noise, 300, 5)
    features = enc.encode(image)
    assert bool(features.attention) == attention
    assert features.meta["noise"] == noise
    assert features.encoder == "diffusion sd1 (cpu, float32)"


@pytest.mark.parametrize("method", ["diffcut", "diffseg", "walk"])
def test_a_finest_region_of_a_diffusion_tree_is_cut_again(method, image, cache_dir):
    """The leaf cutter on diffusion features (concept assignment for pixels; DiffCut's affinity,
    or the walk's graph on attention): a split of the largest leaf keeps the tree's invariants
    and its undo restores the pixels."""
    from core.pipeline import Segmenter
    from core.settings import Settings
    from core.tree import History

    settings = Settings(encoder="diffusion", model=str(tiny_model("sd1")), method=method, cache_dir=cache_dir,
                        cache_size_mb=0)
    seg = Segmenter(settings)
    features = seg.encode(image)
    tree = seg.cut(image, features)
    cutter = seg.cutter(image, features, tree.shape)
    tree.set_granularity(settings.tau_max)
    before = tree.atom_map.copy()
    history = History(tree)
    leaf = max((n for n in tree.frontier() if not tree.nodes[n].children), key=tree.area)
    history.push(tree.split(leaf, cutter))
    tree.check_invariants()
    assert len(tree.nodes[leaf].children) == 2 and all(tree.area(c) > 0 for c in tree.nodes[leaf].children)
    history.undo()
    assert np.array_equal(tree.atom_map, before)
