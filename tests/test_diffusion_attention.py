"""The attention-probability processor against a direct computation on a real attn1 layer."""
from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from core.encoders.attention import AttentionRecorder, AveragedProbabilitiesProcessor, grid_of
from core.encoders.unet_layout import self_attention_layers
from tests.tiny_models import tiny_model


def direct_probabilities(attn, x: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) of every head, then the mean over heads: (N, N)."""
    heads = attn.heads
    q, k = (proj(x)[0].reshape(x.shape[1], heads, -1).transpose(0, 1) for proj in (attn.to_q, attn.to_k))
    return torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1).mean(dim=0)


@torch.no_grad()
def test_head_averaged_chunked_probabilities_match_direct_computation():
    unet = UNet2DConditionModel.from_pretrained(tiny_model("sd1"), subfolder="unet")
    layers = [layer for layer in self_attention_layers(unet) if layer.to_q.in_features == 32][:2]
    assert len(layers) == 2 and layers[0].heads == 2
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 128, 32, generator=generator) for _ in layers]
    recorder = AttentionRecorder()
    recorder.start((8, 16))
    # 4 bytes x 2 heads x 128 keys x 10 rows: the 128 queries are processed in 13 chunks
    processor = AveragedProbabilitiesProcessor(recorder, chunk_bytes=4 * 2 * 128 * 10)
    for layer, x in zip(layers, inputs):
        expected_output = AttnProcessor2_0()(layer, x)
        torch.testing.assert_close(processor(layer, x), expected_output, rtol=1e-4, atol=1e-5)
    maps = recorder.maps()
    assert list(maps) == [(8, 16)]
    expected = (direct_probabilities(layers[0], inputs[0]) + direct_probabilities(layers[1], inputs[1])) / 2
    torch.testing.assert_close(torch.from_numpy(maps[(8, 16)]), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(maps[(8, 16)].sum(axis=1)), torch.ones(128))


def test_grid_of_follows_the_latent_aspect():
    assert grid_of(12 * 16, (12, 16)) == (12, 16)
    assert grid_of(6 * 8, (12, 16)) == (6, 8)
    assert grid_of(2, (4, 8)) == (1, 2)
    with pytest.raises(ValueError):
        grid_of(7, (12, 16))
