"""Segmentation settings shared by the pipeline, the CLI and the GUI, each field with its
metadata (label, help, range, choices, what a change invalidates), from which the CLI flags
(core.cli.settings_args) and the settings dialog (gui.dialogs.settings_dialog) are built."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from core.cut.methods import (ATOMS, METHOD_CHOICES, METHODS, CutMethod, conflict, resolve,
                              wanted_outputs)
from core.encoders.presets import DEFAULT_PRESET, PRESETS
from core.errors import SettingsError

ENCODERS = ("classic", "diffusion")
RESIZE_MODES = ("keep_aspect", "square")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")

#: what changing a setting invalidates, weakest first
NONE, RECUT, REENCODE = "none", "recut", "reencode"
#: a field's kind: how it is parsed, validated and edited
CHOICE, TEXT, INT, FLOAT, BOOL, INTS, FLOATS = "choice", "text", "int", "float", "bool", "ints", "floats"


@dataclass(frozen=True)
class Meta:
    """How a setting is shown, parsed, validated, and what a change to it invalidates.

    `encoders`: the encoders that read it (others ignore a change); `requires`: a boolean
    setting without which it is not read; `suggestions`: values offered for free text;
    `special`: the text shown for the lowest value (e.g. 0 = automatic) or an empty text."""

    label: str
    help: str
    kind: str
    invalidates: str
    group: str
    choices: tuple[str, ...] = ()
    lo: Optional[float] = None
    hi: Optional[float] = None
    step: float = 1.0
    flag: str = ""
    encoders: tuple[str, ...] = ENCODERS
    requires: str = ""
    suggestions: tuple[str, ...] = ()
    special: str = ""


def setting(default: Any, label: str, help: str, kind: str, invalidates: str, group: str,
            **meta: Any) -> Any:
    """A dataclass field carrying its Meta."""
    return field(default=default, metadata={"meta": Meta(label, help, kind, invalidates, group, **meta)})


ENCODING, CUTTING, PIXELS, STORAGE = "Encoder", "Cut", "Pixels", "Cache and downloads"
DIFFUSION = ("diffusion",)


@dataclass
class Settings:
    """Everything that decides how an image is segmented.

    `tau` is the granularity shown by default; the cut tree is computed once down to
    `tau_max` so that any granularity up to it is a pruning, not a recomputation.
    """

    encoder: str = setting("classic", "Encoder", "classic needs no model weights; diffusion uses a "
                           "Stable Diffusion UNet", CHOICE, REENCODE, ENCODING, choices=ENCODERS)
    model: str = setting(DEFAULT_PRESET, "Model", f"diffusion model: a preset ({', '.join(PRESETS)}), a "
                         "diffusers folder or a .safetensors file", TEXT, REENCODE, ENCODING,
                         encoders=DIFFUSION, suggestions=tuple(PRESETS))
    device: str = setting("auto", "Device", "where the diffusion model runs (auto: CUDA, then MPS, "
                          "then CPU)", CHOICE, REENCODE, ENCODING, choices=DEVICES, encoders=DIFFUSION)
    dtype: str = setting("auto", "Precision", "diffusion weights' precision (auto: float16 on GPUs, "
                         "float32 on CPU)", CHOICE, REENCODE, ENCODING, choices=DTYPES, encoders=DIFFUSION)
    timestep: int = setting(-1, "Timestep", "diffusion timestep at which the UNet is read (-1: the "
                            "method's, as its paper: DiffSeg 300, DiffCut and walk 50)", INT, REENCODE, ENCODING,
                            lo=-1, hi=999, encoders=DIFFUSION, special="method's default")
    seed: int = setting(42, "Noise seed", "seed of the diffusion noise", INT, REENCODE, ENCODING,
                        lo=0, hi=2**31 - 1, encoders=DIFFUSION)
    resize_mode: str = setting("keep_aspect", "Resolution", "keep_aspect: long side at the model's "
                               "resolution; square: squash as the papers do", CHOICE, REENCODE, ENCODING,
                               choices=RESIZE_MODES, encoders=DIFFUSION)
    classic_tokens: int = setting(32, "Classic tokens", "classic encoder: tokens on the image's long side",
                                  INT, REENCODE, ENCODING, lo=4, hi=512, flag="--tokens",
                                  encoders=("classic",))
    method: str = setting("auto", "Cut method", "; ".join(
        ["auto: walk for the classic encoder, diffcut for diffusion"]
        + [f"{m.name}: {m.summary}" for m in METHODS.values()]), CHOICE, RECUT, CUTTING, choices=METHOD_CHOICES)
    alpha: float = setting(10.0, "α (affinity exponent)", "affinity exponent (DiffCut's alpha)",
                           FLOAT, RECUT, CUTTING, lo=0.1, hi=100.0, step=1.0)
    tau: float = setting(0.5, "τ (default granularity)", "granularity shown first: larger gives more "
                         "segments (its segments decide the pixels)", FLOAT, RECUT, CUTTING,
                         lo=0.0, hi=1.0, step=0.01)
    tau_max: float = setting(0.9, "τ max (tree depth)", "the tree is computed down to this granularity",
                             FLOAT, RECUT, CUTTING, lo=0.0, hi=1.0, step=0.01)
    min_tokens: int = setting(0, "Smallest split", "never split a node with fewer tokens (0 = off)",
                              INT, RECUT, CUTTING, lo=0, hi=100_000, special="off")
    kl_thresholds: tuple[float, ...] = setting((1.1, 1.1, 1.1), "KL thresholds", "diffseg method: the "
                                               "symmetric-KL merge threshold of each merging iteration, "
                                               "comma-separated (DiffSeg's notebooks: 1.1,1.1,1.1 or 0.9,0.9,0.9)",
                                               FLOATS, RECUT, CUTTING, lo=0.01, hi=100.0)
    walk_steps: int = setting(0, "Walk steps", "walk method: random-walk steps k (0 = automatic)",
                              INT, RECUT, CUTTING, lo=0, hi=100, special="automatic")
    reference_zero_rows: bool = setting(False, "Reproduce DiffCut's zero-row bug",
                                        "parity checks with the DiffCut reference only", BOOL, RECUT, CUTTING)
    pamr: bool = setting(False, "Refine borders with PAMR", "refine boundaries with PAMR + 3x3 median",
                         BOOL, RECUT, PIXELS)
    pamr_iterations: int = setting(10, "PAMR iterations", "PAMR refinement iterations", INT, RECUT, PIXELS,
                                   lo=1, hi=100, requires="pamr")
    pamr_dilations: tuple[int, ...] = setting((1, 2, 4, 8), "PAMR dilations", "PAMR neighbourhood "
                                              "dilations, comma-separated", INTS, RECUT, PIXELS,
                                              lo=1, hi=64, requires="pamr")
    max_mask_side: int = setting(2048, "Largest mask side", "pixel atoms are computed at most this large, "
                                 "then upsampled", INT, RECUT, PIXELS, lo=16, hi=65_536, step=256)
    allow_download: bool = setting(False, "Allow downloading model weights", "let the diffusion encoder "
                                   "download model weights it cannot find locally", BOOL, NONE, STORAGE)
    cache_dir: str = setting("", "Feature cache folder", "feature cache folder (empty: the platform "
                             "cache folder)", TEXT, NONE, STORAGE, special="platform cache folder")
    cache_size_mb: int = setting(2048, "Cache size (MB)", "feature cache size bound in MB (0 = no cache)",
                                 INT, NONE, STORAGE, lo=0, hi=1_000_000, step=256, flag="--cache-size")

    def __post_init__(self) -> None:
        self.pamr_dilations = tuple(int(d) for d in self.pamr_dilations)
        self.kl_thresholds = tuple(float(t) for t in self.kl_thresholds)
        self.validate()

    def validate(self) -> None:
        """Raise SettingsError naming the first invalid value."""
        for name, meta in META.items():
            problem = value_problem(meta, getattr(self, name))
            if problem:
                raise SettingsError(f"setting {name}={getattr(self, name)!r} {problem}")
        if not self.tau <= self.tau_max:
            raise SettingsError(f"setting tau={self.tau} must lie in [0, tau_max={self.tau_max}]")

    @property
    def cut_method(self) -> str:
        """The method that runs: `auto` picks the best measured one for the encoder."""
        return self.method_spec.name

    @property
    def method_spec(self) -> CutMethod:
        """The registry entry of the method that runs (core.cut.methods)."""
        return resolve(self.method, self.encoder)

    @property
    def diffusion_timestep(self) -> int:
        """The timestep the UNet is read at: the setting's, or the running method's default."""
        return self.method_spec.default_timestep if self.timestep < 0 else self.timestep

    def conflict(self) -> Optional[str]:
        """Why these settings cannot work together (e.g. an attention method on the classic
        encoder), or None."""
        return conflict(self.method, self.encoder)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pamr_dilations"] = list(self.pamr_dilations)
        d["kl_thresholds"] = list(self.kl_thresholds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        """Build from a dict (e.g. JSON); unknown keys are ignored, wrong types rejected."""
        if not isinstance(data, dict):
            raise SettingsError(f"settings must be a JSON object, not {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in META:
                continue
            expected = type(DEFAULTS[key])
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


META: dict[str, Meta] = {f.name: f.metadata["meta"] for f in fields(Settings)}
DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}


def value_problem(meta: Meta, value: Any) -> str:
    """What is wrong with `value` for a field described by `meta` ('' when nothing)."""
    if meta.kind == CHOICE and value not in meta.choices:
        return f"is not one of {', '.join(meta.choices)}"
    values = value if meta.kind in (INTS, FLOATS) else (value,) if meta.kind in (INT, FLOAT) else ()
    if meta.kind in (INTS, FLOATS) and not values:
        return "must list at least one value"
    if any((meta.lo is not None and v < meta.lo) or (meta.hi is not None and v > meta.hi) for v in values):
        note = f" ({meta.lo:g} = {meta.special})" if meta.special else ""
        return f"must lie in [{meta.lo:g}, {meta.hi:g}]{note}"
    return ""


def parse_value(name: str, text: str) -> Any:
    """A setting's value from text (a CLI argument or a dialog entry), SettingsError if it is not one."""
    meta = META[name]
    try:
        if meta.kind == INT:
            return int(text)
        if meta.kind == FLOAT:
            return float(text)
        if meta.kind in (INTS, FLOATS):
            number = int if meta.kind == INTS else float
            return tuple(number(part) for part in text.replace(" ", "").split(",") if part)
        if meta.kind == BOOL:
            return {"true": True, "false": False, "1": True, "0": False}[text.strip().lower()]
    except (ValueError, KeyError):
        raise SettingsError(f"setting {name}={text!r} is not {_KIND_TEXT[meta.kind]}") from None
    return text


_KIND_TEXT = {INT: "a whole number", FLOAT: "a number", INTS: "a comma-separated list of whole numbers",
              FLOATS: "a comma-separated list of numbers", BOOL: "true or false"}


def reads(settings: Settings, name: str) -> bool:
    """Whether segmenting with `settings` reads the field `name` at all."""
    meta = META[name]
    if settings.encoder not in meta.encoders or (meta.requires and not getattr(settings, meta.requires)):
        return False
    method_parameters = {p for m in METHODS.values() for p in m.parameters}
    return name not in method_parameters or name in settings.method_spec.parameters


def _effective(settings: Settings, name: str) -> Any:
    """The value that acts: `auto` as the method it runs, the method's timestep for -1."""
    if name == "timestep":
        return settings.diffusion_timestep
    return settings.cut_method if name == "method" else getattr(settings, name)


def encoder_key(settings: Settings) -> tuple:
    """What decides an image's features: equal keys give equal features."""
    method = settings.method_spec
    needs = ((sorted(wanted_outputs(method)), method.clean_latent) if settings.encoder == "diffusion"
             else (ATOMS in wanted_outputs(method),))    # classic: contour atoms or not
    return (*(_effective(settings, n) for n, m in META.items() if m.invalidates == REENCODE and reads(settings, n)),
            *needs)


def invalidation(old: Settings, new: Settings) -> str:
    """What changing `old` to `new` invalidates in a segmented image: "none" (the trees stay),
    "recut" (the trees are cut again from the same features) or "reencode" (new features)."""
    if encoder_key(old) != encoder_key(new):
        return REENCODE
    if any(_effective(old, n) != _effective(new, n) and (reads(old, n) or reads(new, n))
           for n, m in META.items() if m.invalidates == RECUT):
        return RECUT
    return NONE
