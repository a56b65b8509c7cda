"""Benchmark: CutTree's diffusion feature extraction against the reference's way (DiffCut,
`tools/ldm.py`: the whole pipeline loaded, text encoders included, and a full UNet forward with
a forward hook), on real-size architectures with random weights built from public configs.

Each (model, resolution, way) runs in its own subprocess so that peak resident memory is
measured fairly. Prints a table; goal: at most half the time and half the peak memory.

    .venv/bin/python bench/bench_diffusion.py                         # CPU, float32, 512 and 1024
    .venv/bin/python bench/bench_diffusion.py --device cuda --dtype float16 --repeat 20
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              projection_dim=768, hidden_act="quick_gelu")
CLIP_BIG_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                  projection_dim=1280, hidden_act="gelu")
VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
#: SD 1.5's public UNet config (stable-diffusion-v1-5/unet/config.json)
SD15_UNET = dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                 cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
#: SDXL base's public UNet config with transformer_layers_per_block [1, 2, 4], the down-block
#: layout of SSD-1B (SSD-1B also removes some up-block transformer layers; they are kept here,
#: which only makes the reference's full forward slower, not ours)
SSD1B_LAYOUT_UNET = dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
                         transformer_layers_per_block=(1, 2, 4), attention_head_dim=(5, 10, 20),
                         cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
                         addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
                         down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                         up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
MODELS = {"sd15": SD15_UNET, "ssd1b-layout": SSD1B_LAYOUT_UNET}


def build_model(name: str, folder: Path) -> None:
    """Save a random-weight diffusers folder for `name` (skipped when it already exists)."""
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from tests.tiny_models import tiny_tokenizer

    print(f"building {name} with random weights in {folder} ...", flush=True)
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(folder.with_name(folder.name + "_vocab"))
    tokenizer.model_max_length = 77

    def text(config: dict, projection: bool):
        cfg = CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **config)
        return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)

    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    unet = UNet2DConditionModel(**MODELS[name])
    if name == "sd15":
        pipe = StableDiffusionPipeline(vae=AutoencoderKL(**VAE, scaling_factor=0.18215), text_encoder=text(CLIP_L, False),
                                       tokenizer=tokenizer, unet=unet, scheduler=scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    else:
        pipe = StableDiffusionXLPipeline(vae=AutoencoderKL(**VAE, scaling_factor=0.13025, force_upcast=True),
                                         text_encoder=text(CLIP_L, False), text_encoder_2=text(CLIP_BIG_G, True),
                                         tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(folder)


def test_image(seed: int):
    import numpy as np

    return (np.random.default_rng(seed).random((768, 1024, 3)) * 255).astype(np.uint8)


class Stages:
    """Seconds spent in the VAE and in the UNet for the latest image."""

    def __init__(self, device: str) -> None:
        self.device, self.marks = device, {}

    def mark(self, name: str) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
        self.marks[name] = time.perf_counter()

    def seconds(self) -> dict:
        m = self.marks
        return {"vae_s": m["unet"] - m["vae"], "unet_s": m["end"] - m["unet"]}


def ours(folder: Path, resolution: int, device: str, dtype: str, cache_dir: str, stages: Stages):
    """CutTree: pruned UNet, cached empty prompt, early stop after the feature layer."""
    from core.encoders.diffusion import DiffusionEncoder

    encoder = DiffusionEncoder(model=str(folder), device=device, dtype=dtype, resize_mode="square",
                               resolution=resolution, cache_dir=cache_dir, cache_size_mb=0)

    def progress(stage: str, fraction: float) -> None:
        if stage == "encoding image":
            stages.mark("vae")
        elif stage == "running UNet" and "unet" not in stages.marks:
            stages.mark("unet")

    def extract(image):
        stages.marks.clear()
        tokens = encoder.encode(image, progress).tokens
        stages.mark("end")
        return tokens

    return extract


def reference(folder: Path, resolution: int, device: str, dtype: str, stages: Stages):
    """DiffCut's way: every pipeline component in memory, full UNet forward, forward hook on attn1."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDIMScheduler, DiffusionPipeline

    from core.encoders.unet_layout import feature_layer

    torch_dtype = getattr(torch, dtype if dtype != "auto" else "float32")
    pipe = DiffusionPipeline.from_pretrained(folder, torch_dtype=torch_dtype).to(device)
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    sdxl = hasattr(pipe, "text_encoder_2")
    with torch.no_grad():
        if sdxl:
            embeds, _, pooled, _ = pipe.encode_prompt("", device=device, do_classifier_free_guidance=False)
            time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]], device=device,
                                    dtype=torch_dtype)
            extra = {"added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids}}
        else:
            embeds, _ = pipe.encode_prompt("", device, 1, do_classifier_free_guidance=False)
            extra = {}
    captured = []
    feature_layer(pipe.unet).register_forward_hook(lambda m, i, o: captured.append(o))

    @torch.no_grad()
    def extract(image):
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(device) / 255
        x = (F.interpolate(x, size=(resolution, resolution), mode="bilinear") * 2 - 1).to(torch_dtype)
        stages.mark("vae")
        latents = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=torch.Generator(device).manual_seed(42), device=device,
                            dtype=latents.dtype)
        t = torch.tensor([50], device=device)
        latents = scheduler.add_noise(latents, noise, t)
        captured.clear()
        stages.mark("unet")
        pipe.unet(latents, t, encoder_hidden_states=embeds, **extra)
        features = captured[0].float().cpu().numpy()
        stages.mark("end")
        return features

    return extract


def run_one(way: str, folder: Path, resolution: int, device: str, dtype: str, repeat: int, cache_dir: str) -> dict:
    """One measurement in this process: load + first image, then `repeat` warm images."""
    import torch

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    stages = Stages(device)
    start = time.perf_counter()
    extract = ours(folder, resolution, device, dtype, cache_dir, stages) if way == "ours" else \
        reference(folder, resolution, device, dtype, stages)
    extract(test_image(0))
    sync()
    first = time.perf_counter() - start
    first_stages = stages.seconds()
    start = time.perf_counter()
    for i in range(repeat):
        extract(test_image(i + 1))
    sync()
    warm = (time.perf_counter() - start) / max(repeat, 1)
    result = {"first_s": first, **first_stages, "warm_s": warm if repeat else None, "peak_rss_mb": peak_rss_mb()}
    if device == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return result


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited across fork/exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def measure(way: str, folder: Path, resolution: int, args) -> dict:
    command = [sys.executable, __file__, "--child", way, str(folder), str(resolution), "--device", args.device,
               "--dtype", args.dtype, "--repeat", str(args.repeat), "--workdir", str(args.workdir)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise SystemExit(f"{way} {folder.name} {resolution} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="sd15,ssd1b-layout")
    parser.add_argument("--resolutions", default="512,1024")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeat", type=int, default=0, help="warm images after the first (images/s)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cuttree-bench"))
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=3, metavar=("WAY", "FOLDER", "RESOLUTION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_model(args.build, args.workdir / args.build)
        return
    if args.child:
        way, folder, resolution = args.child
        print(json.dumps(run_one(way, Path(folder), int(resolution), args.device, args.dtype, args.repeat,
                                 str(args.workdir / "cache"))))
        return
    rows = []
    for name in args.models.split(","):
        folder = args.workdir / name
        if not (folder / "model_index.json").is_file():  # built in a subprocess: the parent stays small
            subprocess.run([sys.executable, __file__, "--build", name, "--workdir", str(args.workdir)], check=True)
        measure("ours", folder, int(args.resolutions.split(",")[0]), argparse.Namespace(**{**vars(args), "repeat": 0}))
        for resolution in (int(r) for r in args.resolutions.split(",")):
            ref = measure("reference", folder, resolution, args)
            new = measure("ours", folder, resolution, args)
            rows.append((name, resolution, ref, new))
            print_row(*rows[-1], args.repeat, flush=True)
    print_table(rows, args)


def fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_row(name, resolution, ref, new, repeat, flush=False) -> None:
    cells = [name, f"{resolution}²", fmt(ref["first_s"]), fmt(new["first_s"]),
             f"{new['first_s'] / ref['first_s']:.2f}", f"{fmt(ref['vae_s'])} / {fmt(new['vae_s'])}",
             f"{fmt(ref['unet_s'])} / {fmt(new['unet_s'])}", f"{new['unet_s'] / ref['unet_s']:.2f}", fmt(ref["peak_rss_mb"], ".0f"), fmt(new["peak_rss_mb"], ".0f"),
             f"{new['peak_rss_mb'] / ref['peak_rss_mb']:.2f}"]
    if repeat:
        cells += [fmt(1 / ref["warm_s"], ".2f"), fmt(1 / new["warm_s"], ".2f")]
    if "peak_gpu_mb" in ref:
        cells += [fmt(ref["peak_gpu_mb"], ".0f"), fmt(new["peak_gpu_mb"], ".0f")]
    print("| " + " | ".join(cells) + " |", flush=flush)


def print_table(rows, args) -> None:
    header = ["model", "input", "ref s", "ours s", "time ratio", "VAE s ref / ours", "UNet s ref / ours",
              "UNet ratio", "ref peak RSS MB", "ours peak RSS MB", "RSS ratio"]
    if args.repeat:
        header += ["ref img/s (warm)", "ours img/s (warm)"]
    if rows and "peak_gpu_mb" in rows[0][2]:
        header += ["ref peak GPU MB", "ours peak GPU MB"]
    print(f"\ndevice {args.device}, dtype {args.dtype}; seconds = model load + first image (VAE and UNet: "
          f"that image's two stages; the VAE encoder is the same work in both ways), "
          f"peak RSS of the whole process (one subprocess per cell)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print_row(*row, args.repeat)


if __name__ == "__main__":
    main()
