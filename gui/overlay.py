"""Pixels for the canvas layers: the frontier overlay with borders, and selection/hover masks.

Everything is a lookup-table gather over the atom map (one value per atom, then
`lut[atom_map]`), so redrawing a 1024x1024 image costs a few milliseconds.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional

import numpy as np
from PySide6.QtGui import QImage

from core.tree import SegmentTree

BORDER_RGBA = (255, 255, 255, 230)
IGNORED_RGB = (90, 90, 90)


def frontier_rgba(tree: SegmentTree, category_colors: Mapping[int, tuple[int, int, int]],
                  opacity: float, borders: bool = True) -> np.ndarray:
    """(H, W, 4) RGBA: each frontier region in its category colour (or its own), crisp borders."""
    front = tree.frontier()
    colors = np.zeros((len(front), 4), dtype=np.uint8)
    alpha = int(round(255 * opacity))
    for i, nid in enumerate(front):
        node = tree.nodes[nid]
        category = tree.effective_category(nid)
        if node.ignored:
            rgb = IGNORED_RGB
        else:
            rgb = category_colors.get(category, node.color) if category is not None else node.color
        colors[i] = (*rgb, alpha if node.visible else 0)
    labels = tree.atom_lut(front)[tree.atom_map]
    rgba = colors[labels]
    if borders:
        rgba[boundary(labels)] = BORDER_RGBA
    return rgba


def boundary(labels: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another label (1-pixel borders)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


def mask_index(tree: SegmentTree, node_ids: Iterable[int]) -> Optional[np.ndarray]:
    """(H, W) uint8: 0 outside the nodes, 1 inside, 2 on their outline; None when empty."""
    ids = [nid for nid in node_ids if nid in tree.nodes]
    if not ids:
        return None
    lut = np.zeros(tree.n_atoms, dtype=np.uint8)
    for nid in ids:
        lut[tree.nodes[nid].atoms] = 1
    mask = lut[tree.atom_map]
    inside = mask.astype(bool)
    edge = np.zeros_like(inside)
    edge[:, :-1] |= inside[:, :-1] != inside[:, 1:]
    edge[:, 1:] |= inside[:, :-1] != inside[:, 1:]
    edge[:-1, :] |= inside[:-1, :] != inside[1:, :]
    edge[1:, :] |= inside[:-1, :] != inside[1:, :]
    mask[edge & inside] = 2
    return mask


def rgba_image(rgba: np.ndarray) -> QImage:
    """A QImage that owns a copy of an (H, W, 4) uint8 array."""
    h, w = rgba.shape[:2]
    rgba = np.ascontiguousarray(rgba)
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def rgb_image(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of an (H, W, 3) uint8 array."""
    h, w = rgb.shape[:2]
    rgb = np.ascontiguousarray(rgb)
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def indexed_image(index: np.ndarray, fill: tuple[int, int, int, int],
                  outline: tuple[int, int, int, int]) -> QImage:
    """A QImage of a 0/1/2 mask: transparent, fill colour, outline colour."""
    h, w = index.shape
    index = np.ascontiguousarray(index)
    image = QImage(index.data, w, h, w, QImage.Format.Format_Indexed8)
    image.setColorTable([0, _argb(fill), _argb(outline)])
    return image.copy()


def _argb(rgba: tuple[int, int, int, int]) -> int:
    r, g, b, a = rgba
    return (a << 24) | (r << 16) | (g << 8) | b
