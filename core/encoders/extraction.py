"""DiffCut's feature extraction (Couairon et al. 2024, `tools/ldm.py`; reference notes §1.2):
VAE posterior mean x scaling factor, DDIM noise at a small timestep from a fixed seed, one UNet
pass with the empty prompt, and the output of `attn1` in the last transformer block of the
lowest-resolution down block. The UNet is stopped as soon as the last needed layer has run."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.encoders.attention import AttentionRecorder, AveragedProbabilitiesProcessor
from core.encoders.model_loading import LoadedModel
from core.encoders.unet_layout import feature_block_index, feature_layer, self_attention_layers
from core.jobs import CancelToken, Progress, check_cancel, report


def input_size(height: int, width: int, native: int, stride: int, mode: str) -> tuple[int, int]:
    """The (H, W) the image is resized to before the VAE.

    `square`: native x native, as the references. `keep_aspect`: the long side at the native
    resolution, the short side scaled alike and rounded to the nearest multiple of `stride`
    (halves up, at least one stride), so that every UNet level has whole cells.
    """
    if mode == "square":
        return native, native
    scale = native / max(height, width)
    return tuple(max(stride, math.floor(side * scale / stride + 0.5) * stride) for side in (height, width))


def image_tensor(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) in [-1, 1]: bilinear, no antialiasing, like the reference's F.interpolate."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x * 2.0 - 1.0


@torch.no_grad()
def noisy_latents(model: LoadedModel, pixels: torch.Tensor, timestep: int, seed: int,
                  add_noise: bool = True) -> torch.Tensor:
    """VAE posterior mean x scaling_factor, noised to `timestep` with the DDIM schedule.

    The noise comes from a CPU generator seeded with `seed` so that it is the same on every device.
    """
    vae = model.vae
    pixels = pixels.to(device=model.device, dtype=next(vae.parameters()).dtype, memory_format=torch.channels_last)
    latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    latents = latents.to(model.dtype)
    if not add_noise:
        return latents
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32).to(latents.device, latents.dtype)
    return model.scheduler.add_noise(latents, noise, torch.tensor([timestep], device=latents.device))


def unet_conditioning(model: LoadedModel, size: tuple[int, int]) -> dict:
    """Empty-prompt encoder_hidden_states, and for SDXL the added_cond_kwargs.

    SDXL's time_ids are (original H, W, crop top, left, target H, W) = (H, W, 0, 0, H, W).
    """
    device, dtype = model.device, model.dtype
    kwargs = {"encoder_hidden_states": model.prompt.hidden.to(device, dtype)}
    if model.prompt.pooled is not None:
        time_ids = torch.tensor([[size[0], size[1], 0, 0, size[0], size[1]]], device=device, dtype=dtype)
        kwargs["added_cond_kwargs"] = {"text_embeds": model.prompt.pooled.to(device, dtype), "time_ids": time_ids}
    return kwargs


class _StopForward(Exception):
    """Raised by a hook once the last needed layer has run, to skip the rest of the UNet."""


@contextmanager
def _hooks(unet: nn.Module, capture: nn.Module, stop: nn.Module, outputs: list,
           progress: Optional[Progress], cancel: Optional[CancelToken]) -> Iterator[None]:
    """Capture `capture`'s output, stop after `stop`, and report/cancel at every UNet block."""
    blocks = [b for b in (*unet.down_blocks, unet.mid_block, *unet.up_blocks) if b is not None]

    def on_block(index: int):
        def hook(module, args):
            check_cancel(cancel)
            report(progress, "running UNet", index / len(blocks))
        return hook

    def on_capture(module, args, output):
        outputs.append(output)

    def on_stop(module, args, output):
        raise _StopForward

    handles = [b.register_forward_pre_hook(on_block(i)) for i, b in enumerate(blocks)]
    handles.append(capture.register_forward_hook(on_capture))
    handles.append(stop.register_forward_hook(on_stop))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def run_unet(model: LoadedModel, latents: torch.Tensor, timestep: int, size: tuple[int, int],
             recorder: Optional[AttentionRecorder] = None, progress: Optional[Progress] = None,
             cancel: Optional[CancelToken] = None) -> torch.Tensor:
    """Run the UNet until the feature layer (or, when recording attention, until the last
    self-attention layer) and return the feature layer's output as a (h, w, c) float32 tensor."""
    unet = model.unet
    layers = [] if recorder is None else self_attention_layers(unet)
    stop = layers[-1] if layers else feature_layer(unet)
    if recorder is not None:
        recorder.start(tuple(latents.shape[-2:]))
        processors = {layer: layer.processor for layer in layers}
        for layer in layers:
            layer.set_processor(AveragedProbabilitiesProcessor(recorder))
    outputs: list[torch.Tensor] = []
    t = torch.tensor([timestep], device=latents.device)
    try:
        with _hooks(unet, feature_layer(unet), stop, outputs, progress, cancel):
            unet(latents, t, **unet_conditioning(model, size))
    except _StopForward:
        pass
    finally:
        if recorder is not None:
            for layer, processor in processors.items():
                layer.set_processor(processor)
    return feature_grid(outputs[0], latents.shape[-2:], feature_block_index(unet))


def feature_grid(output: torch.Tensor, latent_hw, block_index: int) -> torch.Tensor:
    """(1, h*w, c) attn1 output of down block `block_index` as an (h, w, c) float32 grid."""
    h, w = (side // 2 ** block_index for side in latent_hw)
    return output[0].float().reshape(h, w, -1)
