"""The encoder output handed to every cut method."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from core.atoms import AtomGraph


@dataclass
class Features:
    """Per-token features of one image, and optionally self-attention maps.

    tokens:    (h, w, c) float32 token grid; h and w follow the image's aspect ratio
               (or are equal in `square` resize mode).
    attention: optional self-attention probabilities, keyed by the grid shape (hr, wr)
               of the layers they come from: an (hr*wr, hr*wr) float32 row-stochastic
               matrix, averaged over heads and over the layers of that resolution.
    image_size: (height, width) of the image the features describe.
    encoder:   a short description shown to the user, e.g. "classic" or "diffusion ssd-1b".
    local:     True when a token's features describe only its neighbourhood (the classic
               encoder): a segment's mean feature then says little about its pixels, so
               pixels follow the token labels, guided by colour, instead of DiffCut's concept
               assignment (docs/decisions/0003-classic-pixel-step.md).
    descriptors: optional (h', w', d) grid that region descriptors are pooled from (label
               suggestions, core/descriptors.py; any grid over the image, the classic encoder's
               is finer than its tokens); None means the tokens themselves.
    cues:      optional (h, w, d) scaled colour/texture/position cues per token (the classic
               encoder's, before its Fourier features; the atom walk's edge weights).
    atoms:     optional contour atoms of the image (the classic encoder): small regions that
               follow its edges, on which the contour method builds the finer levels
               (docs/decisions/0006-contour-atoms-and-specks.md).
    """

    tokens: np.ndarray
    image_size: tuple[int, int]
    encoder: str
    attention: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    local: bool = False
    meta: dict = field(default_factory=dict)
    descriptors: Optional[np.ndarray] = None
    cues: Optional[np.ndarray] = None
    atoms: Optional[AtomGraph] = None

    def __post_init__(self) -> None:
        if self.tokens.ndim != 3:
            raise ValueError(f"token grid must be (h, w, c), got shape {self.tokens.shape}")

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.tokens.shape[0]), int(self.tokens.shape[1])

    def flat(self) -> np.ndarray:
        """Tokens as an (h*w, c) matrix in row-major order (token id = row * w + col)."""
        h, w, c = self.tokens.shape
        return self.tokens.reshape(h * w, c)
