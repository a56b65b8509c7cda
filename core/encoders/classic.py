"""A weight-free encoder: colour, texture and position on a token grid.

It makes the app work offline on any CPU. Per token it measures the mean and spread of
CIELAB colour, oriented gradient energy of lightness at two scales, and the token's
position, then maps them through random Fourier features (Rahimi & Recht, NIPS 2007) so
that the cosine similarity DiffCut uses approximates a Gaussian kernel on those cues: the
brightness-colour-texture-position affinity of Shi & Malik's normalized cuts (TPAMI 2000).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2lab

from core.atoms import AtomGraph, contour_atoms
from core.features import Features
from core.jobs import CancelToken, Progress, check_cancel, report

PIXELS_PER_TOKEN = 8
N_FOURIER = 384
#: Kernel widths, after DiffCut's ^alpha (alpha=10) sharpening: a Lab difference of about
#: COLOR_SCALE/sqrt(alpha/2), or a distance of POSITION_SCALE/sqrt(alpha/2) of the image
#: diagonal, halves the affinity of two tokens. The kernels are local (a few tokens apart):
#: the random walk then spreads affinity along similar regions, which measured best on
#: BSDS500 (docs/decisions/0003-classic-pixel-step.md; the wide kernels of the first
#: version, colour 28 and position 0.9, scored 0.47 covering).
COLOR_SCALE = 10.0
TEXTURE_SCALE = 3.0
POSITION_SCALE = 0.05
#: contour atoms are computed on images at most this large (long side), then upsampled
ATOM_SIDE = 640
ATOMS_PER_TOKEN = 4
#: region descriptors (label suggestions) are the same cues on a grid this many times finer
#: per axis: a pole or a pedestrian narrower than a token is then described by its own
#: pixels, not by the background it shares its tokens with (decision 0304, fourth pass)
DESCRIPTOR_CELLS_PER_TOKEN = 2


def token_grid(height: int, width: int, long_side: int) -> tuple[int, int]:
    """Token grid (h, w) with `long_side` tokens on the image's long side, aspect kept."""
    if height >= width:
        return long_side, max(1, round(long_side * width / height))
    return max(1, round(long_side * height / width)), long_side


class ClassicEncoder:
    """Colour/texture/position features on a token grid, no model weights."""

    name = "classic"

    def __init__(self, tokens_long_side: int = 32, seed: int = 0, atoms: bool = False) -> None:
        self.tokens_long_side = tokens_long_side
        self.seed = seed
        self.atoms = atoms

    def encode(self, image: np.ndarray, progress: Optional[Progress] = None,
               cancel: Optional[CancelToken] = None) -> Features:
        report(progress, "encode", 0.0)
        h, w = token_grid(image.shape[0], image.shape[1], self.tokens_long_side)
        cues = grid_cues(image, (h, w))
        report(progress, "encode", 0.6)
        check_cancel(cancel)
        tokens = fourier_features(cues, N_FOURIER, self.seed)
        report(progress, "encode", 0.7)
        check_cancel(cancel)
        fine = token_grid(image.shape[0], image.shape[1], self.tokens_long_side * DESCRIPTOR_CELLS_PER_TOKEN)
        descriptors = grid_cues(image, fine).reshape(*fine, -1)
        report(progress, "encode", 0.8)
        atoms = self._atoms(image, h * w) if self.atoms else None
        report(progress, "encode", 1.0)
        return Features(tokens.reshape(h, w, -1), image_size=image.shape[:2], encoder="classic",
                        local=True, descriptors=descriptors, cues=cues.reshape(h, w, -1), atoms=atoms)

    def _atoms(self, image: np.ndarray, tokens: int) -> AtomGraph:
        """About ATOMS_PER_TOKEN contour atoms per token, on the image at most ATOM_SIDE large."""
        if max(image.shape[:2]) > ATOM_SIDE:
            scale = ATOM_SIDE / max(image.shape[:2])
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
        return contour_atoms(image, ATOMS_PER_TOKEN * tokens)


def grid_cues(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(h*w, 12) cues of an RGB image on an (h, w) grid, measured on its box-reduced copy."""
    h, w = grid
    small = np.asarray(Image.fromarray(image).resize(
        (w * PIXELS_PER_TOKEN, h * PIXELS_PER_TOKEN), Image.Resampling.BOX))
    return token_cues(small, grid)


def token_cues(small: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(h*w, 12) scaled cues: Lab mean (3), Lab spread (3), gradient energy (4), position (2)."""
    h, w = grid
    lab = rgb2lab(small).astype(np.float32)
    light = lab[..., 0]
    energy = []
    for sigma in (1.0, 2.5):
        gy = ndimage.gaussian_filter(light, sigma, order=(1, 0))
        gx = ndimage.gaussian_filter(light, sigma, order=(0, 1))
        energy += [np.abs(gy), np.abs(gx)]
    per_pixel = np.concatenate([lab, lab ** 2, np.stack(energy, axis=-1)], axis=-1)
    cells = per_pixel.reshape(h, PIXELS_PER_TOKEN, w, PIXELS_PER_TOKEN, -1).mean(axis=(1, 3))
    mean = cells[..., :3]
    spread = np.sqrt(np.maximum(cells[..., 3:6] - mean ** 2, 0))
    texture = ndimage.uniform_filter(np.log1p(np.concatenate([spread, cells[..., 6:]], -1)),
                                     size=(3, 3, 1), mode="nearest")
    diag = np.hypot(h, w)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    position = np.stack([yy, xx], axis=-1) / diag
    scaled = np.concatenate([mean / COLOR_SCALE, texture / TEXTURE_SCALE,
                             position / POSITION_SCALE], axis=-1)
    return scaled.reshape(h * w, -1).astype(np.float32)


def fourier_features(cues: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Random Fourier features whose dot products approximate exp(-|a-b|^2 / 2)."""
    rng = np.random.default_rng(seed)
    freqs = rng.standard_normal((cues.shape[1], n)).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    return (np.sqrt(2.0 / n) * np.cos(cues @ freqs + phases)).astype(np.float32)
