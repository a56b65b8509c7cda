"""Loading the parts of a Stable Diffusion model that feature extraction runs: the UNet (pruned
after the feature layer when only DiffCut features are needed), the VAE encoder, the DDIM noise
schedule and the empty-prompt conditioning (text encoders are loaded once, then never again)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from core.encoders.devices import is_out_of_memory
from core.encoders.empty_prompt import EmptyPrompt, EmptyPromptStore, encode_empty_prompt
from core.encoders.model_source import ModelSource, check_safetensors
from core.encoders.presets import family_from_unet_config
from core.encoders.unet_layout import prune_after_feature_layer, total_stride
from core.errors import CutTreeError, ModelLoadError
from core.jobs import CancelToken, Progress, check_cancel, report

_SD_FAMILIES = "a Stable Diffusion 1.x/2.x or SDXL-family model"


@dataclass
class LoadedModel:
    """What feature extraction needs, on one device; text encoders are not kept."""

    label: str
    family: str
    unet: nn.Module
    vae: nn.Module                # AutoencoderKL without its decoder
    scheduler: object             # DDIMScheduler, trailing spacing (only add_noise is used)
    prompt: EmptyPrompt
    native_resolution: int
    stride: int                   # image sides must be multiples of this
    device: torch.device
    dtype: torch.dtype
    features_only: bool           # True: the UNet was pruned after the DiffCut feature layer

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move to another device and dtype (used to retry on the CPU after a GPU ran out of memory)."""
        self.unet.to(device=device, dtype=dtype)
        self.vae.to(device=device, dtype=vae_dtype(self.vae.config, dtype))
        self.device, self.dtype = device, dtype


def vae_dtype(vae_config: dict, dtype: torch.dtype) -> torch.dtype:
    """float16 VAEs run in float32 unless their config says `force_upcast: false` (diffusers' default)."""
    return torch.float32 if dtype == torch.float16 and vae_config.get("force_upcast", True) else dtype


def load_model(source: ModelSource, device: torch.device, dtype: torch.dtype, features_only: bool,
               prompt_store: EmptyPromptStore, allow_download: bool = False,
               progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None) -> LoadedModel:
    """Load `source` for extraction; every failure is a one-line ModelLoadError saying what to do."""
    try:
        if source.single_file:
            return _load_single_file(source, device, dtype, features_only, prompt_store, allow_download,
                                     progress, cancel)
        return _load_folder(source, device, dtype, features_only, prompt_store, progress, cancel)
    except CutTreeError:
        raise
    except Exception as error:  # diffusers/transformers/torch raise many types for broken models
        if is_out_of_memory(error):
            raise ModelLoadError(f"not enough {device.type.upper()} memory to load model '{source.label}'; "
                                 "close other GPU programs, or use --device cpu") from error
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ModelLoadError(f"could not load model '{source.label}' from '{source.path}' ({reason}); "
                             f"check that it is a complete copy of {_SD_FAMILIES}") from error


def _load_folder(source: ModelSource, device: torch.device, dtype: torch.dtype, features_only: bool,
                 store: EmptyPromptStore, progress: Optional[Progress], cancel: Optional[CancelToken]) -> LoadedModel:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    folder = source.path
    _check_folder(folder)
    report(progress, "loading UNet", 0.1)
    unet = _load_module(UNet2DConditionModel, folder, "unet", device, dtype,
                        prune_after_feature_layer if features_only else None)
    check_cancel(cancel)
    report(progress, "loading VAE", 0.6)
    vae_type = vae_dtype(AutoencoderKL.load_config(folder / "vae"), dtype)
    vae = _load_module(AutoencoderKL, folder, "vae", device, vae_type, _drop_decoder)
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(folder / "scheduler"),
                                          timestep_spacing="trailing")
    check_cancel(cancel)
    report(progress, "encoding the empty prompt", 0.8)
    prompt = store.get_or_compute(source.identity(), lambda: _empty_prompt_from_folder(folder, device, dtype))
    return _assemble(source, unet, vae, scheduler, prompt, device, dtype, features_only)


def _load_single_file(source: ModelSource, device: torch.device, dtype: torch.dtype, features_only: bool,
                      store: EmptyPromptStore, allow_download: bool, progress: Optional[Progress],
                      cancel: Optional[CancelToken]) -> LoadedModel:
    """A single .safetensors checkpoint (original Stability layout) through diffusers' from_single_file."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    names = check_safetensors(source.path)
    if not any(n.startswith("model.diffusion_model.") for n in names):
        raise ModelLoadError(f"'{source.path}' is not a Stable Diffusion checkpoint (no model.diffusion_model "
                             f"weights); use {_SD_FAMILIES}")
    sdxl = any(n.startswith("conditioner.embedders.1.") for n in names)
    pipeline_class = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    report(progress, "loading checkpoint", 0.1)
    try:
        pipe = pipeline_class.from_single_file(str(source.path), torch_dtype=dtype,
                                               local_files_only=not allow_download)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ModelLoadError(f"could not load '{source.path}' ({reason}); a single-file checkpoint needs its "
                             "base model's configuration from the Hugging Face cache: allow downloads once "
                             "(--allow-download) or convert it to a diffusers folder") from error
    check_cancel(cancel)
    encoders = [e for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e is not None]
    tokenizers = [t for t in (pipe.tokenizer, getattr(pipe, "tokenizer_2", None)) if t is not None]
    prompt = store.get_or_compute(source.identity(), lambda: EmptyPrompt.concatenate(
        [encode_empty_prompt(t, e.to(device), penultimate=sdxl) for t, e in zip(tokenizers, encoders)]))
    unet, vae = pipe.unet, pipe.vae
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    del pipe, encoders
    if features_only:
        prune_after_feature_layer(unet)
    _drop_decoder(vae)
    unet.to(device).eval().requires_grad_(False)
    vae.to(device=device, dtype=vae_dtype(vae.config, dtype)).eval().requires_grad_(False)
    return _assemble(source, unet, vae, scheduler, prompt, device, dtype, features_only)


def _assemble(source: ModelSource, unet, vae, scheduler, prompt: EmptyPrompt, device: torch.device,
              dtype: torch.dtype, features_only: bool) -> LoadedModel:
    for module in (unet, vae):  # NHWC convolutions are faster with oneDNN and cuDNN
        module.to(memory_format=torch.channels_last)
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    config = dict(unet.config)
    family = source.family or family_from_unet_config(config)
    if (family == "sdxl") != (prompt.pooled is not None):
        raise ModelLoadError(f"model '{source.label}' has a UNet and text encoders that do not match "
                             f"(wrong architecture); use {_SD_FAMILIES}")
    native = source.native_resolution or int(config["sample_size"]) * vae_scale
    return LoadedModel(source.label, family, unet, vae, scheduler, prompt, native,
                       total_stride(config, vae_scale), device, dtype, features_only)


def _check_folder(folder: Path) -> None:
    """A clear error for a folder that is not a diffusers Stable Diffusion model."""
    index, unet_config = folder / "model_index.json", folder / "unet" / "config.json"
    if not index.is_file() and not unet_config.is_file():
        raise ModelLoadError(f"'{folder}' is not a diffusers model folder (no model_index.json); give a folder "
                             "saved by diffusers (model_index.json, unet/, vae/, ...) or a .safetensors file")
    if not unet_config.is_file():
        kind = _json(index).get("_class_name", "model")
        raise ModelLoadError(f"'{folder}' holds a {kind} without a UNet (wrong architecture); use {_SD_FAMILIES}")
    kind = _json(unet_config).get("_class_name")
    if kind != "UNet2DConditionModel":
        raise ModelLoadError(f"'{folder}' has a {kind} instead of a UNet2DConditionModel (wrong architecture); "
                             f"use {_SD_FAMILIES}")
    for part in ("vae", "scheduler"):
        if not (folder / part).is_dir():
            raise ModelLoadError(f"'{folder}' has no {part}/ folder; the model is incomplete, "
                                 "download or copy it again")


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ModelLoadError(f"'{path}' is not readable JSON; the model is damaged, "
                             "download or copy it again") from None


def _load_module(cls, folder: Path, sub: str, device: torch.device, dtype: torch.dtype,
                 prune: Optional[Callable[[nn.Module], None]]) -> nn.Module:
    """Build `cls` on the meta device, prune it, then read only the weights it still has.

    Peak memory is the pruned model, not the whole checkpoint. Checkpoints that need key
    conversion or are not safetensors go through diffusers' own from_pretrained instead.
    """
    with torch.device("meta"):
        module = cls.from_config(cls.load_config(folder / sub))
    if prune is not None:
        prune(module)
    wanted = set(module.state_dict())
    state = _read_weights(_weight_files(folder / sub, dtype), wanted, device, dtype)
    if state is None:
        module = cls.from_pretrained(folder, subfolder=sub, torch_dtype=dtype)
        if prune is not None:
            prune(module)
        module.to(device)
    else:
        module.load_state_dict(state, strict=True, assign=True)
    return module.eval().requires_grad_(False)


def _weight_files(folder: Path, dtype: torch.dtype) -> list[Path]:
    """The safetensors files of one component, preferring the fp16 variant when running in fp16."""
    variants = ["fp16", None] if dtype == torch.float16 else [None, "fp16"]
    for variant in variants:
        name = "diffusion_pytorch_model" + (f".{variant}" if variant else "")
        single, index = folder / f"{name}.safetensors", folder / f"{name}.safetensors.index.json"
        if single.is_file():
            return [single]
        if index.is_file():
            return sorted({folder / f for f in _json(index).get("weight_map", {}).values()})
    return []


def _read_weights(files: list[Path], wanted: set[str], device: torch.device,
                  dtype: torch.dtype) -> Optional[dict[str, torch.Tensor]]:
    """The tensors named in `wanted`, or None when the files do not hold exactly those names."""
    from safetensors import safe_open

    if not files:
        return None
    state: dict[str, torch.Tensor] = {}
    for path in files:
        names = check_safetensors(path)
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            for name in names:
                if name in wanted:
                    state[name] = reader.get_tensor(name).to(device=device, dtype=dtype)
    return state if set(state) == wanted else None


def _drop_decoder(vae: nn.Module) -> None:
    """Feature extraction only encodes: the decoder is never kept."""
    vae.decoder = None
    vae.post_quant_conv = None


def _empty_prompt_from_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> EmptyPrompt:
    """Load the tokenizers and text encoders of a folder, one at a time, to encode ""."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    subs = [sub for sub in ("text_encoder", "text_encoder_2") if (folder / sub).is_dir()]
    if not subs:
        raise ModelLoadError(f"'{folder}' has no text_encoder/ folder; the model is incomplete, "
                             "download or copy it again")
    parts = []
    for sub in subs:
        cls = CLIPTextModelWithProjection if sub == "text_encoder_2" else CLIPTextModel
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder=sub.replace("text_encoder", "tokenizer"))
        encoder = cls.from_pretrained(folder, subfolder=sub, dtype=dtype).to(device).eval()
        parts.append(encode_empty_prompt(tokenizer, encoder, penultimate=len(subs) == 2))
        del encoder  # one text encoder in memory at a time
    return EmptyPrompt.concatenate(parts)
