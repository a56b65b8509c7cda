"""The diffusion encoder: Stable Diffusion UNet features (and attention maps) for one image,
with the model loaded lazily once and kept warm, and results cached on disk."""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch

from core.cut.methods import ATTENTION, wanted_outputs
from core.encoders.attention import AttentionRecorder
from core.encoders.devices import choose_device, choose_dtype, dtype_name, is_out_of_memory
from core.encoders.empty_prompt import EmptyPromptStore
from core.encoders.extraction import image_tensor, input_size, noisy_latents, run_unet
from core.encoders.feature_cache import FeatureCache, cache_root, image_digest
from core.encoders.model_loading import LoadedModel, load_model
from core.encoders.model_source import ModelSource, resolve_source
from core.encoders.presets import DEFAULT_PRESET
from core.errors import SettingsError
from core.features import Features
from core.jobs import CancelToken, Progress, check_cancel, report
from core.settings import Settings

#: bumped whenever extraction changes what it returns, so that old cache entries are not reused
EXTRACTION_VERSION = 1


class DiffusionEncoder:
    """Encodes images with a Stable Diffusion model (see core.encoders.extraction)."""

    def __init__(self, model: str = DEFAULT_PRESET, device: str = "auto", dtype: str = "auto",
                 resize_mode: str = "keep_aspect", timestep: int = 50, seed: int = 42,
                 with_attention: bool = False, allow_download: bool = False, cache_dir: str = "",
                 cache_size_mb: int = 2048, resolution: Optional[int] = None, add_noise: bool = True) -> None:
        """`resolution` overrides the model's native side length (long side; a multiple of its stride)."""
        self.model_name = model
        self.resolution = resolution
        self.device = choose_device(device)
        self.dtype = choose_dtype(dtype, self.device)
        self.resize_mode = resize_mode
        self.timestep, self.seed, self.add_noise = timestep, seed, add_noise
        self.with_attention = with_attention
        self.allow_download = allow_download
        root = cache_root(cache_dir)
        self.cache = FeatureCache(root / "features", cache_size_mb) if cache_size_mb > 0 else None
        self.prompt_store = EmptyPromptStore(root / "prompts")
        self._source: Optional[ModelSource] = None
        self._model: Optional[LoadedModel] = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "DiffusionEncoder":
        """The encoder for `settings`; attention maps are computed only for methods that use them,
        and the latent is noised unless the method's reference reads the clean one (DiffSeg)."""
        method = settings.method_spec
        return cls(model=settings.model, device=settings.device, dtype=settings.dtype,
                   resize_mode=settings.resize_mode, timestep=settings.diffusion_timestep, seed=settings.seed,
                   with_attention=ATTENTION in wanted_outputs(method), allow_download=settings.allow_download,
                   cache_dir=settings.cache_dir, cache_size_mb=settings.cache_size_mb,
                   add_noise=not method.clean_latent)

    @property
    def name(self) -> str:
        return f"diffusion {self._source.label if self._source else self.model_name}"

    def encode(self, image: np.ndarray, progress: Optional[Progress] = None,
               cancel: Optional[CancelToken] = None) -> Features:
        """Features of an (H, W, 3) uint8 RGB image: float32 (h, w, c) tokens, optional attention."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        source = self._resolve(progress, cancel)
        if self.cache is None:
            return self._compute(image, progress, cancel)
        key = {"encoder": "diffusion", "version": EXTRACTION_VERSION, "model": source.identity(),
               "image": image_digest(image), "resize_mode": self.resize_mode, "timestep": self.timestep,
               "seed": self.seed, "add_noise": self.add_noise, "resolution": self.resolution,
               "outputs": ["features", "attention"] if self.with_attention else ["features"],
               "device": self.device.type, "dtype": dtype_name(self.dtype)}
        return self.cache.get_or_compute(key, lambda: self._compute(image, progress, cancel))

    def _resolve(self, progress: Optional[Progress], cancel: Optional[CancelToken]) -> ModelSource:
        if self._source is None:
            self._source = resolve_source(self.model_name, self.allow_download, progress, cancel)
        return self._source

    def _loaded(self, progress: Optional[Progress], cancel: Optional[CancelToken]) -> LoadedModel:
        if self._model is None:
            self._model = load_model(self._resolve(progress, cancel), self.device, self.dtype,
                                     features_only=not self.with_attention, prompt_store=self.prompt_store,
                                     allow_download=self.allow_download, progress=progress, cancel=cancel)
        return self._model

    def _compute(self, image: np.ndarray, progress: Optional[Progress], cancel: Optional[CancelToken]) -> Features:
        model = self._loaded(progress, cancel)
        try:
            return self._extract(model, image, progress, cancel)
        except Exception as error:
            if model.device.type == "cpu" or not is_out_of_memory(error):
                raise
        message = f"{model.device.type.upper()} ran out of memory; retrying this image on the CPU"
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        report(progress, message, 0.0)
        gpu = (model.device, model.dtype)
        _empty_device_cache(model.device)
        model.to(torch.device("cpu"), torch.float32)
        try:
            return self._extract(model, image, progress, cancel)
        finally:
            model.to(*gpu)

    def _extract(self, model: LoadedModel, image: np.ndarray, progress: Optional[Progress],
                 cancel: Optional[CancelToken]) -> Features:
        side = self.resolution or model.native_resolution
        if side % model.stride:
            raise SettingsError(f"resolution {side} must be a multiple of {model.stride} for model {model.label}")
        size = input_size(image.shape[0], image.shape[1], side, model.stride, self.resize_mode)
        check_cancel(cancel)
        report(progress, "encoding image", 0.0)
        latents = noisy_latents(model, image_tensor(image, size), self.timestep, self.seed, self.add_noise)
        recorder = AttentionRecorder() if self.with_attention else None
        tokens = run_unet(model, latents, self.timestep, size, recorder, progress, cancel)
        report(progress, "running UNet", 1.0)
        return Features(tokens=tokens.cpu().numpy(), image_size=(int(image.shape[0]), int(image.shape[1])),
                        encoder=f"diffusion {model.label} ({model.device.type}, {dtype_name(model.dtype)})",
                        attention=recorder.maps() if recorder else {},
                        meta={"model": model.label, "family": model.family, "input_size": list(size),
                              "timestep": self.timestep, "seed": self.seed, "noise": self.add_noise,
                              "resize_mode": self.resize_mode})


def _empty_device_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
