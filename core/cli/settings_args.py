"""Command-line options that map onto core.settings.Settings, shared by the commands."""
from __future__ import annotations

import argparse

from core.settings import DEVICES, DTYPES, ENCODERS, METHODS, RESIZE_MODES, Settings


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --encoder, --model, --method, --tau ... (defaults from Settings)."""
    d = Settings()
    g = parser.add_argument_group("segmentation settings")
    g.add_argument("--encoder", choices=ENCODERS, default=d.encoder,
                   help="classic needs no model weights; diffusion uses a Stable Diffusion UNet")
    g.add_argument("--model", default=d.model,
                   help="diffusion model: a preset name, a diffusers folder or a .safetensors file")
    g.add_argument("--device", choices=DEVICES, default=d.device)
    g.add_argument("--dtype", choices=DTYPES, default=d.dtype,
                   help="diffusion weights' precision (auto: float16 on GPUs, float32 on CPU)")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of the diffusion noise")
    g.add_argument("--method", choices=METHODS, default=d.method)
    g.add_argument("--alpha", type=float, default=d.alpha, help="affinity exponent (DiffCut's alpha)")
    g.add_argument("--tau", type=float, default=d.tau, help="granularity: larger gives more segments")
    g.add_argument("--tau-max", type=float, default=d.tau_max,
                   help="the tree is computed down to this granularity")
    g.add_argument("--timestep", type=int, default=d.timestep)
    g.add_argument("--resize-mode", choices=RESIZE_MODES, default=d.resize_mode)
    g.add_argument("--walk-steps", type=int, default=d.walk_steps,
                   help="walk method: random-walk steps (0 = automatic)")
    g.add_argument("--tokens", type=int, default=d.classic_tokens,
                   help="classic encoder: tokens on the image's long side")
    g.add_argument("--pamr", action="store_true", help="refine boundaries with PAMR + 3x3 median")
    g.add_argument("--allow-download", action="store_true",
                   help="let the diffusion encoder download model weights it cannot find locally")
    g.add_argument("--cache-dir", default=d.cache_dir, help="feature cache folder (default: platform cache)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from parsed options (raises SettingsError on an invalid combination)."""
    return Settings(encoder=args.encoder, model=args.model, device=args.device, dtype=args.dtype,
                    seed=args.seed, walk_steps=args.walk_steps, method=args.method,
                    alpha=args.alpha, tau=args.tau, tau_max=max(args.tau_max, args.tau),
                    timestep=args.timestep, resize_mode=args.resize_mode,
                    classic_tokens=args.tokens, pamr=args.pamr,
                    allow_download=args.allow_download, cache_dir=args.cache_dir)
