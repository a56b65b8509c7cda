"""Pixels for the canvas layers: the frontier overlay with borders, and selection/hover masks.

Everything is a per-atom lookup table gathered through the atom map (`lut[atom_map]`, one
4-byte or 1-byte gather per pixel), and borders come from the precomputed list of pixel pairs
that straddle two atoms (`AtomEdges`): a border between two segments is an atom edge whose two
atoms lie in different segments. A 1024x1024 redraw then costs a few milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import numpy as np
from PySide6.QtGui import QImage
from scipy.ndimage import find_objects

from core.tree import SegmentTree

BORDER_RGBA = (255, 255, 255, 230)
IGNORED_RGB = (90, 90, 90)


@dataclass
class AtomEdges:
    """Pixel pairs (first, second) that are 4-neighbours in different atoms; atom bounding boxes."""

    first: np.ndarray
    second: np.ndarray
    atom_first: np.ndarray
    atom_second: np.ndarray
    boxes: np.ndarray          # (n_atoms, 4): top, left, bottom, right (exclusive)


_edges_cache: dict[tuple[int, int], AtomEdges] = {}


def atom_edges(tree: SegmentTree) -> AtomEdges:
    """The tree's atom edges, cached until its atom map changes (a leaf cut, a brush stroke, an undo)."""
    key = (id(tree), tree.atom_version)
    edges = _edges_cache.get(key)
    if edges is None or not np.array_equal(tree.atom_map.ravel()[edges.first], edges.atom_first):
        edges = _compute_edges(tree.atom_map, tree.n_atoms)
        _edges_cache.clear()
        _edges_cache[key] = edges
    return edges


def _compute_edges(atom_map: np.ndarray, n_atoms: int) -> AtomEdges:
    h, w = atom_map.shape
    flat = atom_map.ravel()
    index = np.arange(h * w, dtype=np.int64).reshape(h, w)
    right = index[:, :-1][atom_map[:, :-1] != atom_map[:, 1:]]
    down = index[:-1, :][atom_map[:-1, :] != atom_map[1:, :]]
    first = np.concatenate([right, down])
    second = np.concatenate([right + 1, down + w])
    boxes = np.zeros((n_atoms, 4), dtype=np.int64)     # atoms a brush emptied keep a zero box
    for atom, found in enumerate(find_objects(atom_map + 1)):
        if found is not None:
            boxes[atom] = (found[0].start, found[1].start, found[0].stop, found[1].stop)
    return AtomEdges(first, second, flat[first], flat[second], boxes)


def _pack(rgba: tuple[int, int, int, int]) -> int:
    """A premultiplied ARGB32 pixel (QImage's native uint32 layout, which Qt paints fastest)."""
    r, g, b, a = rgba
    return (a << 24) | (r * a // 255 << 16) | (g * a // 255 << 8) | (b * a // 255)


def frontier_rgba(tree: SegmentTree, category_colors: Mapping[int, tuple[int, int, int]],
                  opacity: float, borders: bool = True) -> np.ndarray:
    """(H, W) uint32 premultiplied ARGB: each frontier region in its category colour (or its own)."""
    front = tree.frontier()
    alpha = int(round(255 * opacity))
    colors = np.empty(len(front), dtype=np.uint32)
    for i, nid in enumerate(front):
        node = tree.nodes[nid]
        category = tree.effective_category(nid)
        if node.ignored:
            rgb = IGNORED_RGB
        elif category is not None:
            rgb = category_colors.get(category, node.color)
        else:
            rgb = node.color
        colors[i] = _pack((*rgb, alpha if node.visible else 0))
    lut = tree.atom_lut(front)
    pixels = colors[lut][tree.atom_map]
    if borders:
        edges = atom_edges(tree)
        cut = lut[edges.atom_first] != lut[edges.atom_second]
        pixels.ravel()[edges.first[cut]] = _pack(BORDER_RGBA)
    return pixels


@dataclass
class MaskCrop:
    """A 0/1/2 mask (outside, inside, inner outline) cropped to the nodes' bounding box."""

    index: np.ndarray
    top: int
    left: int


def mask_index(tree: SegmentTree, node_ids: Iterable[int]) -> Optional[MaskCrop]:
    """The nodes' mask with its outline, only over their bounding box; None when empty."""
    ids = [nid for nid in node_ids if nid in tree.nodes]
    if not ids:
        return None
    lut = np.zeros(tree.n_atoms, dtype=np.uint8)
    for nid in ids:
        lut[tree.nodes[nid].atoms] = 1
    edges = atom_edges(tree)
    inside = lut.astype(bool)
    boxes = edges.boxes[inside]
    top, left = boxes[:, :2].min(axis=0)
    bottom, right = boxes[:, 2:].max(axis=0)
    mask = lut[tree.atom_map[top:bottom, left:right]]
    cut = lut[edges.atom_first] != lut[edges.atom_second]
    pixels = np.where(lut[edges.atom_first[cut]] == 1, edges.first[cut], edges.second[cut])
    width = tree.atom_map.shape[1]
    mask[pixels // width - top, pixels % width - left] = 2
    return MaskCrop(mask, int(top), int(left))


def argb_image(pixels: np.ndarray) -> QImage:
    """A QImage that owns a copy of (H, W) uint32 premultiplied ARGB pixels."""
    h, w = pixels.shape[:2]
    pixels = np.ascontiguousarray(pixels)
    return QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


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
