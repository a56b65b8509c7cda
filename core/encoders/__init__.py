"""Encoders turn an RGB image into a token grid of features (see core.features.Features)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol

import numpy as np

from core.features import Features
from core.jobs import CancelToken, Progress

if TYPE_CHECKING:   # core.settings reads core.encoders.presets: no import at run time
    from core.settings import Settings


class Encoder(Protocol):
    """Anything that maps an (H, W, 3) uint8 RGB image to Features."""

    name: str

    def encode(self, image: np.ndarray, progress: Optional[Progress] = None,
               cancel: Optional[CancelToken] = None) -> Features: ...


def make_encoder(settings: Settings) -> Encoder:
    """The encoder the settings ask for; diffusion code is imported only when needed."""
    if settings.encoder == "classic":
        from core.encoders.classic import ClassicEncoder
        from core.cut.methods import ATOMS, wanted_outputs
        return ClassicEncoder(tokens_long_side=settings.classic_tokens,
                              atoms=ATOMS in wanted_outputs(settings.method_spec))
    from core.encoders.diffusion import DiffusionEncoder
    return DiffusionEncoder.from_settings(settings)
