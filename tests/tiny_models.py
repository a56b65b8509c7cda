"""Tiny Stable Diffusion models (random weights, real diffusers layouts) saved to disk for tests."""
from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import torch

MAX_TOKENS = 8


def tiny_tokenizer(folder: Path):
    """A CLIP tokenizer with a 54-entry vocabulary built on disk (no hub)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         model_max_length=MAX_TOKENS, pad_token="<|endoftext|>")


def _text_encoder(hidden: int, projection: bool, vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                            num_attention_heads=2, vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS,
                            projection_dim=hidden, eos_token_id=1, bos_token_id=0, pad_token_id=1)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         latent_channels=4, sample_size=64, scaling_factor=0.18215)


def _scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def save_sd1(folder: Path) -> Path:
    """An SD 1.x layout: 4 levels, self-attention at 3 down levels + mid (16 attn1 layers), 128 px native."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(folder.with_name(folder.name + "_vocab"))
    unet = UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 32, 64, 64), layers_per_block=2, cross_attention_dim=32,
        attention_head_dim=2, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    pipe = StableDiffusionPipeline(vae=_vae(), text_encoder=_text_encoder(32, False, len(tokenizer)),
                                   tokenizer=tokenizer, unet=unet, scheduler=_scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def save_sdxl(folder: Path) -> Path:
    """An SDXL layout: 3 levels, transformer_layers_per_block (1, 2, 3), text_time added conditioning."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(1)
    tokenizer = tiny_tokenizer(folder.with_name(folder.name + "_vocab"))
    unet = UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 32, 64), layers_per_block=2, cross_attention_dim=64,
        transformer_layers_per_block=(1, 2, 3), attention_head_dim=(2, 2, 4), norm_num_groups=8,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=32 + 6 * 8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
    vae = _vae()
    vae.register_to_config(scaling_factor=0.13025)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=_text_encoder(32, False, len(tokenizer)),
                                     text_encoder_2=_text_encoder(32, True, len(tokenizer)), tokenizer=tokenizer,
                                     tokenizer_2=tokenizer, unet=unet, scheduler=_scheduler())
    pipe.save_pretrained(folder)
    return folder


_BUILT: dict[str, Path] = {}


def tiny_model(kind: str) -> Path:
    """A tiny "sd1" or "sdxl" diffusers folder, built once per test session (treat it as read-only)."""
    if kind not in _BUILT:
        root = Path(tempfile.mkdtemp(prefix=f"cuttree-tiny-{kind}-"))
        atexit.register(shutil.rmtree, root, True)
        _BUILT[kind] = {"sd1": save_sd1, "sdxl": save_sdxl}[kind](root / kind)
    return _BUILT[kind]
