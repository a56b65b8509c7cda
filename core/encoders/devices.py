"""Which torch device and dtype the diffusion encoder runs on, and CUDA out-of-memory detection."""
from __future__ import annotations

import torch

from core.errors import SettingsError

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def choose_device(requested: str) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; an explicit device must exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; "
                            "use --device auto or --device cpu")
    if requested == "mps" and not _mps_available():
        raise SettingsError("device 'mps' was asked for but Apple MPS is not available; "
                            "use --device auto or --device cpu")
    return torch.device(requested)


def choose_dtype(requested: str, device: torch.device) -> torch.dtype:
    """`auto` is float16 on CUDA and MPS and float32 on the CPU; bfloat16 is allowed anywhere."""
    if requested == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    if requested == "float16" and device.type == "cpu":
        raise SettingsError("dtype float16 is not supported on the CPU; use float32 or bfloat16")
    return _DTYPES[requested]


def dtype_name(dtype: torch.dtype) -> str:
    """'float16' for torch.float16 and so on, for messages and cache keys."""
    return str(dtype).removeprefix("torch.")


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA (or MPS) out-of-memory error, which the encoder answers by retrying on CPU."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
