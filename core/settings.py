"""Segmentation settings shared by the pipeline, the CLI and the GUI."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from core.errors import SettingsError

ENCODERS = ("classic", "diffusion")
METHODS = ("auto", "diffcut", "diffseg", "walk")
RESIZE_MODES = ("keep_aspect", "square")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class Settings:
    """Everything that decides how an image is segmented.

    `tau` is the granularity shown by default; the cut tree is computed once down to
    `tau_max` so that any granularity up to it is a pruning, not a recomputation.
    """

    encoder: str = "classic"
    model: str = "ssd-1b"          # diffusion preset name, diffusers folder or .safetensors file
    device: str = "auto"
    dtype: str = "auto"            # auto | float32 | float16 | bfloat16
    method: str = "auto"           # auto: walk for the classic encoder, diffcut for diffusion
    alpha: float = 10.0
    tau: float = 0.5
    tau_max: float = 0.8
    min_tokens: int = 0            # extra stop: never split a node with fewer tokens (0 = off)
    reference_zero_rows: bool = False  # reproduce DiffCut's zero-row bug (parity checks only)
    timestep: int = 50
    seed: int = 42
    resize_mode: str = "keep_aspect"
    classic_tokens: int = 32       # classic encoder: tokens on the long side
    walk_steps: int = 0            # walk method: random-walk steps k (0 = automatic)
    pamr: bool = False
    pamr_iterations: int = 10
    pamr_dilations: tuple[int, ...] = (1, 2, 4, 8)
    max_mask_side: int = 4096      # pixel atoms are computed at most this large, then upsampled
    allow_download: bool = False
    cache_dir: str = ""            # empty = the platform cache folder
    cache_size_mb: int = 2048

    def __post_init__(self) -> None:
        self.pamr_dilations = tuple(int(d) for d in self.pamr_dilations)
        self.validate()

    def validate(self) -> None:
        """Raise SettingsError naming the first invalid value."""
        choices = {"encoder": ENCODERS, "method": METHODS,
                   "resize_mode": RESIZE_MODES, "device": DEVICES,
                   "dtype": DTYPES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(f"setting {name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not self.alpha > 0:
            raise SettingsError(f"setting alpha={self.alpha} must be positive")
        if not 0 <= self.tau <= self.tau_max:
            raise SettingsError(f"setting tau={self.tau} must lie in [0, tau_max={self.tau_max}]")
        if not 0 <= self.timestep < 1000:
            raise SettingsError(f"setting timestep={self.timestep} must lie in [0, 999]")
        if self.classic_tokens < 4:
            raise SettingsError(f"setting classic_tokens={self.classic_tokens} must be at least 4")
        if not 0 <= self.walk_steps <= 100:
            raise SettingsError(f"setting walk_steps={self.walk_steps} must lie in [0, 100] (0 = automatic)")
        if self.max_mask_side < 16:
            raise SettingsError(f"setting max_mask_side={self.max_mask_side} must be at least 16")

    @property
    def cut_method(self) -> str:
        """The method that runs: `auto` picks the best measured one for the encoder.

        On the classic encoder's local features DiffCut's constant threshold over-segments;
        the random walk's automatic threshold does not (docs/decisions/0003).
        """
        if self.method != "auto":
            return self.method
        return "walk" if self.encoder == "classic" else "diffcut"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pamr_dilations"] = list(self.pamr_dilations)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        """Build from a dict (e.g. JSON); unknown keys are ignored, wrong types rejected."""
        if not isinstance(data, dict):
            raise SettingsError(f"settings must be a JSON object, not {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        defaults = cls.__new__(cls)
        for f in fields(cls):
            object.__setattr__(defaults, f.name, f.default)
        for key, value in data.items():
            if key not in known:
                continue
            expected = type(getattr(defaults, key))
            if expected is tuple and isinstance(value, (list, tuple)):
                kwargs[key] = tuple(value)
            elif expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                kwargs[key] = float(value)
            elif isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
                kwargs[key] = value
            else:
                raise SettingsError(f"setting {key}={value!r} should be of type {expected.__name__}")
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "Settings":
        return Settings.from_dict({**self.to_dict(), **changes})


#: fields whose change needs new features (a new encoder pass); see `invalidation`
REENCODE_FIELDS = frozenset({"encoder", "model", "device", "dtype", "timestep", "seed", "resize_mode",
                             "classic_tokens"})
#: fields that change no tree: display defaults, the feature cache, downloads
DISPLAY_FIELDS = frozenset({"tau", "allow_download", "cache_dir", "cache_size_mb"})


def invalidation(old: Settings, new: Settings) -> str:
    """What a change of settings invalidates: "none" (apply without touching any tree),
    "recut" (cut again from cached features) or "reencode" (new features)."""
    changed = {f.name for f in fields(Settings) if getattr(old, f.name) != getattr(new, f.name)}
    if changed & REENCODE_FIELDS:
        return "reencode"
    if changed - DISPLAY_FIELDS:
        return "recut"
    return "none"
