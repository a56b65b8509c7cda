"""Pixels for the canvas layers: the frontier overlay with borders, and selection/hover masks.

Everything is a per-atom lookup table gathered through the atom map (`lut[atom_map]`, one
4-byte or 1-byte gather per pixel). The overlay is a persistent buffer in which an edit
redraws only the pixels of the atoms whose region or colour changed (each atom's pixels are
listed once per atom map, `AtomGeometry`); borders and selection outlines come from the
precomputed list of pixel pairs that straddle two atoms.
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
class AtomGeometry:
    """Where each atom is: its pixels, its bounding box, and the pixel pairs along atom borders."""

    first: np.ndarray          # flat pixel indices: 4-neighbour pairs (first, second) in different atoms
    second: np.ndarray
    atom_first: np.ndarray     # the atoms of those pixels
    atom_second: np.ndarray
    boxes: np.ndarray          # (n_atoms, 4): top, left, bottom, right (exclusive); zeros for no pixel
    order: np.ndarray          # flat pixel indices sorted by atom ...
    starts: np.ndarray         # ... atom a's pixels are order[starts[a]:starts[a + 1]]

    def pixels(self, atoms: np.ndarray) -> np.ndarray:
        """Flat indices of the pixels of the given atoms (ids)."""
        parts = [self.order[self.starts[a]:self.starts[a + 1]] for a in atoms]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def area(self, atoms: np.ndarray) -> int:
        """Pixel count of the given atoms (a boolean per atom)."""
        return int(np.diff(self.starts)[atoms].sum())

    def box(self, atoms: np.ndarray) -> Box:
        """Bounding box of the given atoms (a boolean per atom)."""
        boxes = self.boxes[atoms]
        return (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))


Box = tuple[int, int, int, int]        # top, left, bottom, right (exclusive), atom-map pixels
_geometry_cache: list[tuple[np.ndarray, int, AtomGeometry]] = []     # the last (atom map, version, geometry)


def atom_geometry(tree: SegmentTree) -> AtomGeometry:
    """The tree's atom geometry, cached until its atom map changes (a leaf cut, a brush stroke, an undo).

    The cache holds the atom map itself, so a new tree (a new array) can never match it.
    """
    if _geometry_cache:
        atom_map, version, geometry = _geometry_cache[0]
        if atom_map is tree.atom_map and version == tree.atom_version:
            return geometry
    geometry = _compute_geometry(tree.atom_map, tree.n_atoms)
    _geometry_cache[:] = [(tree.atom_map, tree.atom_version, geometry)]
    return geometry


def _compute_geometry(atom_map: np.ndarray, n_atoms: int) -> AtomGeometry:
    h, w = atom_map.shape
    flat = atom_map.ravel()
    index = np.arange(h * w, dtype=np.int64).reshape(h, w)
    right = index[:, :-1][atom_map[:, :-1] != atom_map[:, 1:]]
    down = index[:-1, :][atom_map[:-1, :] != atom_map[1:, :]]
    first = np.concatenate([right, down])
    second = np.concatenate([right + 1, down + w])
    boxes = np.zeros((n_atoms, 4), dtype=np.int64)
    for atom, found in enumerate(find_objects(atom_map + 1)):
        if found is not None:
            boxes[atom] = (found[0].start, found[1].start, found[0].stop, found[1].stop)
    keys = flat.astype(np.uint16) if n_atoms <= 1 << 16 else flat     # 16-bit keys: a radix sort
    order = np.argsort(keys, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=n_atoms))])
    return AtomGeometry(first, second, flat[first], flat[second], boxes, order, starts)


def _pack(rgba: tuple[int, int, int, int]) -> int:
    """A premultiplied ARGB32 pixel (QImage's native uint32 layout, which Qt paints fastest)."""
    r, g, b, a = rgba
    return (a << 24) | (r * a // 255 << 16) | (g * a // 255 << 8) | (b * a // 255)


class FrontierOverlay:
    """The frontier overlay as a persistent premultiplied ARGB32 buffer, redrawn where it changed.

    Each region is drawn in its category colour (or its own) with a border where two regions
    meet. `update` compares each atom's owner and colour with the last drawing and redraws
    only the pixels of the atoms that changed and the borders next to them (a merge, a label,
    an undo touch one or two regions, not the image); it returns their bounding box, the
    part of the canvas to repaint. A new tree or atom map, or a change to most of the image,
    is one full gather instead.
    """

    def __init__(self) -> None:
        self.pixels = np.zeros((0, 0), dtype=np.uint32)
        self._key: tuple = ()
        self._owner = np.zeros(0, dtype=np.int32)     # per atom: the frontier node showing it
        self._colors = np.zeros(0, dtype=np.uint32)   # per atom: its packed colour

    def update(self, tree: SegmentTree, category_colors: Mapping[int, tuple[int, int, int]],
               opacity: float) -> Optional[Box]:
        """Bring the buffer up to date; the box that was redrawn, or None when nothing changed."""
        owner, colors = _atom_owner_and_colors(tree, category_colors, opacity)
        geometry = atom_geometry(tree)
        key = (id(tree), tree.atom_version, tree.shape)
        changed = (owner != self._owner) | (colors != self._colors) if key == self._key else None
        if changed is not None and not changed.any():
            return None
        if changed is None or geometry.area(changed) > tree.atom_map.size // 4:
            self.pixels = colors[tree.atom_map]      # a new tree, or much changed: one gather is faster
            changed = np.ones(len(owner), dtype=bool)
            box: Box = (0, 0, *tree.shape)
        else:
            redrawn = geometry.pixels(np.flatnonzero(changed))
            self.pixels.ravel()[redrawn] = colors[tree.atom_map.ravel()[redrawn]]
            top, left, bottom, right = geometry.box(changed)
            # a border lies on the upper / left pixel of a pair: one more row and column can change
            box = (max(top - 1, 0), max(left - 1, 0), bottom, right)
        self._key, self._owner, self._colors = key, owner, colors
        _redraw_borders(self.pixels, geometry, owner, colors, changed)
        return box


def _atom_owner_and_colors(tree: SegmentTree, category_colors: Mapping[int, tuple[int, int, int]],
                           opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """Per atom: the frontier node that shows it (-1: none) and its packed colour."""
    front = tree.frontier()
    alpha = int(round(255 * opacity))
    colors = np.zeros(len(front) + 1, dtype=np.uint32)     # the last entry: atoms no region holds
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
    return np.append(np.asarray(front, dtype=np.int32), -1)[lut], colors[lut]


def _redraw_borders(pixels: np.ndarray, geometry: AtomGeometry, owner: np.ndarray, colors: np.ndarray,
                    changed: np.ndarray) -> None:
    """Redraw the pixels on atom edges next to changed atoms: a border where the two atoms
    belong to different regions, else the atom's colour (every edge of such a pixel is
    re-examined, so a border another edge still needs is kept)."""
    near = changed[geometry.atom_first] | changed[geometry.atom_second]
    mark = np.zeros(pixels.size, dtype=bool)
    mark[geometry.first[near]] = True
    redo = mark[geometry.first]
    flat = pixels.ravel()
    flat[geometry.first[redo]] = colors[geometry.atom_first[redo]]
    cut = redo & (owner[geometry.atom_first] != owner[geometry.atom_second])
    flat[geometry.first[cut]] = _pack(BORDER_RGBA)


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
    inside = np.zeros(tree.n_atoms, dtype=bool)
    for nid in ids:
        inside[tree.nodes[nid].atoms] = True
    geometry = atom_geometry(tree)
    top, left, bottom, right = geometry.box(inside)
    mask = np.zeros((bottom - top, right - left), dtype=np.uint8)
    width = tree.atom_map.shape[1]
    rows, cols = np.divmod(geometry.pixels(np.flatnonzero(inside)), width)
    mask[rows - top, cols - left] = 1
    cut = inside[geometry.atom_first] != inside[geometry.atom_second]
    pixels = np.where(inside[geometry.atom_first[cut]], geometry.first[cut], geometry.second[cut])
    mask[pixels // width - top, pixels % width - left] = 2
    return MaskCrop(mask, int(top), int(left))


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
