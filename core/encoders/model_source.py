"""Finding a model on disk: a local folder or .safetensors file, the Hugging Face cache (offline),
or a download when the user allowed it."""
from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from core.encoders.presets import PRESETS, find_preset
from core.errors import Cancelled, ModelLoadError
from core.jobs import CancelToken, Progress, check_cancel, report

#: the parts of a diffusers repository the encoder can use (weights as safetensors only)
DOWNLOAD_PATTERNS = ["model_index.json", "scheduler/*.json", "unet/*.json", "unet/*.safetensors",
                     "vae/*.json", "vae/*.safetensors", "text_encoder*/*.json", "text_encoder*/*.safetensors",
                     "tokenizer*/*"]
DOWNLOAD_IGNORE = ["*.fp16.*", "*.non_ema.*", "*.ema.*", "*/flax_*", "*.msgpack", "*.onnx*"]
SUBFOLDERS = ("unet", "vae", "scheduler", "text_encoder", "text_encoder_2")

_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_PRESET_LIST = ", ".join(PRESETS)


@dataclass(frozen=True)
class ModelSource:
    """A model found on this machine: a diffusers folder or a single checkpoint file."""

    label: str          # what the user sees: the preset name, or the folder/file name
    path: Path
    single_file: bool
    family: Optional[str] = None
    native_resolution: Optional[int] = None

    def identity(self) -> dict:
        """What makes results of this model differ: its path and the size and time of its files."""
        files = [self.path] if self.single_file else [
            p for sub in SUBFOLDERS for p in sorted((self.path / sub).glob("*")) if p.is_file()]
        return {"label": self.label, "path": str(self.path.resolve()),
                "files": [[p.name, *_stat(p)] for p in files]}


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def resolve_source(model: str, allow_download: bool, progress: Optional[Progress] = None,
                   cancel: Optional[CancelToken] = None) -> ModelSource:
    """Where `model` (preset name, local path or Hugging Face repo id) is on disk.

    Order: a local path; the Hugging Face cache without network; a download only when allowed.
    """
    preset = find_preset(model)
    if preset is not None:
        folder = _from_hub(preset.repo_id, allow_download, progress, cancel)
        return ModelSource(preset.name, folder, False, preset.family, preset.native_resolution)
    local = Path(model).expanduser()
    if local.exists():
        return _local_source(local)
    if _REPO_ID.match(model) and not model.lower().endswith(".safetensors") and not model.startswith("."):
        return ModelSource(model, _from_hub(model, allow_download, progress, cancel), single_file=False)
    if model.lower().endswith(".safetensors") or os.sep in model or "/" in model:
        raise ModelLoadError(f"model path '{model}' does not exist; give an existing diffusers folder, "
                             f"a .safetensors file, or a preset ({_PRESET_LIST})")
    raise ModelLoadError(f"unknown model '{model}': use a preset ({_PRESET_LIST}), "
                         "a diffusers folder, a .safetensors file or a Hugging Face repo id")


def _local_source(path: Path) -> ModelSource:
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise ModelLoadError(f"'{path}' is not a .safetensors checkpoint; give a .safetensors file "
                                 "or a diffusers model folder")
        return ModelSource(path.name, path, single_file=True)
    return ModelSource(path.name, path, single_file=False)


def _from_hub(repo_id: str, allow_download: bool, progress: Optional[Progress],
              cancel: Optional[CancelToken]) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=DOWNLOAD_PATTERNS,
                                      ignore_patterns=DOWNLOAD_IGNORE))
    except Exception:  # not cached (the hub raises several error types for that)
        pass
    if not allow_download:
        raise ModelLoadError(f"model '{repo_id}' is not a local folder nor in the Hugging Face cache, and downloads "
                             "are off; allow downloads (--allow-download, or the setting) or give a local model folder")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(f"model '{repo_id}' is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                             "unset HF_HUB_OFFLINE to download it, or give a local model folder")
    check_cancel(cancel)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=DOWNLOAD_PATTERNS, ignore_patterns=DOWNLOAD_IGNORE,
                                      tqdm_class=_progress_bar(progress, cancel, repo_id)))
    except Cancelled:
        raise
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"could not download '{repo_id}' from the Hugging Face Hub ({reason[:160]}); "
                             "check the network connection, or download the model elsewhere and give its folder"
                             ) from error


def _progress_bar(progress: Optional[Progress], cancel: Optional[CancelToken], repo_id: str) -> type:
    """A tqdm class that forwards download progress to `progress` and honours `cancel`."""

    class DownloadProgress(tqdm):
        def update(self, n: float = 1) -> Optional[bool]:
            check_cancel(cancel)
            shown = super().update(n)
            if self.total:
                report(progress, f"downloading {repo_id}", self.n / self.total)
            return shown

    return DownloadProgress


def check_safetensors(path: Path) -> list[str]:
    """The tensor names of a complete .safetensors file; a one-line ModelLoadError if it is damaged."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise ValueError
            header = json.loads(f.read(header_len))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise ModelLoadError(f"'{path}' is not a valid .safetensors file (damaged or truncated); "
                             "delete it and download or copy it again") from None
    if 8 + header_len + end > size:
        raise ModelLoadError(f"'{path}' is truncated ({size} of {8 + header_len + end} bytes); "
                             "delete it and download or copy it again")
    return [k for k in header if k != "__metadata__"]
