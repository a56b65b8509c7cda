"""Named Stable Diffusion checkpoints the diffusion encoder knows by a short name."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Preset:
    """A Hugging Face repository with the facts the encoder needs about it.

    The hooked layer is not stored: it is always `attn1` of the last transformer block of the
    lowest-resolution down block that has attention (DiffCut, `tools/ldm.py`), which for the
    SDXL family is `down_blocks[-1]` and for SD 1.x/2.x `down_blocks[-2]`; see
    core.encoders.extraction.feature_layer.
    """

    name: str
    repo_id: str
    family: str              # "sdxl" | "sd1" | "sd2"
    native_resolution: int   # the side length the model was trained at


DEFAULT_PRESET = "ssd-1b"   # as DiffCut

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(DEFAULT_PRESET, "segmind/SSD-1B", "sdxl", 1024),
    Preset("segmind-vega", "segmind/Segmind-Vega", "sdxl", 1024),
    Preset("sdxl-base", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl", 1024),
    Preset("sd14", "CompVis/stable-diffusion-v1-4", "sd1", 512),
    Preset("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd1", 512),
    Preset("sd21-base", "stabilityai/stable-diffusion-2-1-base", "sd2", 512),
)}


def find_preset(name: str) -> Optional[Preset]:
    """The preset called `name` (case-insensitive), or None."""
    return PRESETS.get(name.strip().lower())


def family_from_unet_config(config: dict) -> str:
    """Guess the model family of an unnamed model from its UNet configuration."""
    if config.get("addition_embed_type") == "text_time":
        return "sdxl"
    return "sd2" if config.get("cross_attention_dim") == 1024 else "sd1"
