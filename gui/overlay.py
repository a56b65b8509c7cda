"""Pixels for the canvas layers: the frontier overlay with borders, and selection/hover masks.

Everything is a per-atom lookup table gathered through the atom map (`lut[atom_map]`, one
4-byte or 1-byte gather per pixel). The overlay is a persistent buffer in which an edit
redraws only the pixels of the atoms whose region or colour changed (each atom's pixels are
listed once per atom map, `AtomGeometry`); borders and selection outlines come from the
precomputed list of pixel pairs that straddle two atoms.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

import numpy as np
from PySide6.QtGui import QImage
from scipy.ndimage import find_objects

from core.tree import SegmentTree

BORDER_RGBA = (255, 255, 255, 230)
IGNORED_RGB = (90, 90, 90)


@dataclass
class AtomGeometry:
    """Where each atom is: its pixels, its bounding box, and the pixel pairs along atom borders.

    Built once per atom map, then updated where a brush stroke (or its undo) changed pixels.
    """

    first: np.ndarray          # flat pixel indices: 4-neighbour pairs (first, second) in different atoms
    second: np.ndarray
    atom_first: np.ndarray     # the atoms of those pixels
    atom_second: np.ndarray
    boxes: np.ndarray          # (n_atoms, 4): top, left, bottom, right (exclusive); may be loose after
                               # a brush stroke shrank an atom (a box only bounds what to redraw)
    counts: np.ndarray         # pixels per atom
    order: np.ndarray          # flat pixel indices sorted by atom ...
    starts: np.ndarray         # ... atom a's pixels are order[starts[a]:starts[a + 1]] ...
    lists: dict[int, np.ndarray] = field(default_factory=dict)   # ... unless a stroke changed them
    revision: int = 0          # counts updates; `touched`: the atoms whose pixels the last one changed
    touched: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def pixels(self, atoms: np.ndarray) -> np.ndarray:
        """Flat indices of the pixels of the given atoms (ids)."""
        parts = [self._pixels_of(int(a)) for a in atoms]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _pixels_of(self, atom: int) -> np.ndarray:
        listed = self.lists.get(atom)
        if listed is not None:
            return listed
        if atom + 1 >= len(self.starts):
            return np.zeros(0, dtype=np.int64)
        return self.order[self.starts[atom]:self.starts[atom + 1]]

    def area(self, atoms: np.ndarray) -> int:
        """Pixel count of the given atoms (a boolean per atom)."""
        return int(self.counts[atoms].sum())

    def box(self, atoms: np.ndarray) -> Box:
        """Bounding box of the given atoms (a boolean per atom)."""
        boxes = self.boxes[atoms]
        return (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))

    def update(self, atom_map: np.ndarray, n_atoms: int, changed: np.ndarray, before: np.ndarray) -> None:
        """Follow a change of the atom map at `changed` (flat indices; `before`: their old atoms)."""
        flat = atom_map.ravel()
        after = flat[changed]
        width = atom_map.shape[1]
        rows, cols = np.divmod(changed, width)
        # edges whose first pixel is a changed pixel or its upper / left neighbour
        top, left = max(int(rows.min()) - 1, 0), max(int(cols.min()) - 1, 0)
        bottom, right = int(rows.max()) + 1, int(cols.max()) + 1
        first_rows, first_cols = np.divmod(self.first, width)
        keep = ~((first_rows >= top) & (first_rows < bottom) & (first_cols >= left) & (first_cols < right))
        first, second = _edges_in(atom_map, top, left, bottom, right)
        self.first = np.concatenate([self.first[keep], first])
        self.second = np.concatenate([self.second[keep], second])
        self.atom_first, self.atom_second = flat[self.first], flat[self.second]
        # per-atom arrays follow the atom count (an undo removes the atoms its stroke made)
        grow = max(n_atoms - len(self.counts), 0)
        self.counts = np.concatenate([self.counts, np.zeros(grow, dtype=self.counts.dtype)])
        self.counts += np.bincount(after, minlength=len(self.counts)) - np.bincount(before, minlength=len(self.counts))
        self.counts = self.counts[:n_atoms]
        self.boxes = np.concatenate([self.boxes, np.zeros((grow, 4), dtype=self.boxes.dtype)])[:n_atoms]
        touched = np.unique(np.concatenate([before, after]))
        self.touched = touched[touched < n_atoms]
        self.revision += 1
        for atom in touched:
            if atom >= n_atoms:
                self.lists.pop(int(atom), None)
                continue
            current = self._pixels_of(int(atom))
            gained = changed[after == atom]
            self.lists[int(atom)] = np.concatenate([current[flat[current] == atom], gained])
            if gained.size:
                self._grow_box(int(atom), rows[after == atom], cols[after == atom])

    def _grow_box(self, atom: int, rows: np.ndarray, cols: np.ndarray) -> None:
        box = (int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)
        old = self.boxes[atom]
        if old[2] > 0:         # a bottom of 0: the atom had no pixel, its box is only the new one
            box = (min(box[0], old[0]), min(box[1], old[1]), max(box[2], old[2]), max(box[3], old[3]))
        self.boxes[atom] = box


Box = tuple[int, int, int, int]        # top, left, bottom, right (exclusive), atom-map pixels
INCREMENTAL_MAX = 1 / 16               # a change of more of the atom map than this: rebuild the geometry


@dataclass
class _Cached:
    atom_map: np.ndarray       # the tree's array itself: a new tree (a new array) never matches
    version: int
    copy: np.ndarray           # its pixels when `geometry` was last brought up to date
    geometry: AtomGeometry


_geometry_cache: list[_Cached] = []      # the last one


def atom_geometry(tree: SegmentTree) -> AtomGeometry:
    """The tree's atom geometry, kept up to date as its atom map changes.

    A leaf cut, a brush stroke or their undo change the atom map: the pixels that differ from
    the cached copy are found with one comparison, and a small change updates the geometry
    instead of rebuilding it (a stroke then costs what it covers, not the image).
    """
    cached = _geometry_cache[0] if _geometry_cache else None
    if cached is not None and cached.atom_map is tree.atom_map:
        if cached.version != tree.atom_version:
            changed = np.flatnonzero(cached.copy.ravel() != tree.atom_map.ravel())
            if changed.size > tree.atom_map.size * INCREMENTAL_MAX:
                cached = None
            else:
                before = cached.copy.ravel()[changed]
                cached.copy.ravel()[changed] = tree.atom_map.ravel()[changed]
                cached.geometry.update(tree.atom_map, tree.n_atoms, changed, before)
                cached.version = tree.atom_version
        if cached is not None:
            return cached.geometry
    geometry = _compute_geometry(tree.atom_map, tree.n_atoms)
    _geometry_cache[:] = [_Cached(tree.atom_map, tree.atom_version, tree.atom_map.copy(), geometry)]
    return geometry


def _compute_geometry(atom_map: np.ndarray, n_atoms: int) -> AtomGeometry:
    flat = atom_map.ravel()
    first, second = _edges_in(atom_map, 0, 0, *atom_map.shape)
    boxes = np.zeros((n_atoms, 4), dtype=np.int64)
    for atom, found in enumerate(find_objects(atom_map + 1)):
        if found is not None:
            boxes[atom] = (found[0].start, found[1].start, found[0].stop, found[1].stop)
    keys = flat.astype(np.uint16) if n_atoms <= 1 << 16 else flat     # 16-bit keys: a radix sort
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(flat, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)])
    return AtomGeometry(first, second, flat[first], flat[second], boxes, counts, order, starts)


def _edges_in(atom_map: np.ndarray, top: int, left: int, bottom: int, right: int) -> tuple[np.ndarray, np.ndarray]:
    """4-neighbour pixel pairs (first, second) in different atoms whose first pixel (the left or
    upper one) lies in the box; flat indices."""
    h, w = atom_map.shape
    sub = atom_map[top:min(bottom + 1, h), left:min(right + 1, w)]       # with the right / lower neighbours
    rows, cols = bottom - top, right - left
    index = np.arange(top, top + sub.shape[0])[:, None] * w + np.arange(left, left + sub.shape[1])[None, :]
    across = index[:rows, :-1][:, :cols][(sub[:rows, :-1] != sub[:rows, 1:])[:, :cols]]
    down = index[:-1, :cols][:rows][(sub[:-1, :cols] != sub[1:, :cols])[:rows]]
    return np.concatenate([across, down]), np.concatenate([across + 1, down + w])


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
    part of the canvas to repaint. When pixels moved between atoms (a brush stroke, a leaf
    cut, their undo), the atoms the geometry update touched are redrawn as well. A new tree,
    a rebuilt geometry or a change to most of the image is one full gather instead.
    """

    def __init__(self) -> None:
        self.pixels = np.zeros((0, 0), dtype=np.uint32)
        self._key: tuple = ()
        self._geometry: Optional[AtomGeometry] = None     # the geometry and its revision last drawn
        self._revision = -1
        self._owner = np.zeros(0, dtype=np.int32)     # per atom: the frontier node showing it
        self._colors = np.zeros(0, dtype=np.uint32)   # per atom: its packed colour

    def update(self, tree: SegmentTree, category_colors: Mapping[int, tuple[int, int, int]],
               opacity: float) -> Optional[Box]:
        """Bring the buffer up to date; the box that was redrawn, or None when nothing changed."""
        owner, colors = _atom_owner_and_colors(tree, category_colors, opacity)
        geometry = atom_geometry(tree)
        changed = self._changed_atoms(tree, geometry, owner, colors)
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
        self._key, self._owner, self._colors = (id(tree), tree.shape), owner, colors
        self._geometry, self._revision = geometry, geometry.revision
        _redraw_borders(self.pixels, geometry, owner, colors, changed)
        return box

    def _changed_atoms(self, tree: SegmentTree, geometry: AtomGeometry, owner: np.ndarray,
                       colors: np.ndarray) -> Optional[np.ndarray]:
        """Per atom: must its pixels be redrawn? None: everything (another tree or atom map)."""
        if (id(tree), tree.shape) != self._key or geometry is not self._geometry:
            return None
        changed = _differs(self._owner, owner) | _differs(self._colors, colors)
        if geometry.revision == self._revision + 1:          # a brush stroke, a leaf cut, an undo
            changed[geometry.touched] = True
        elif geometry.revision != self._revision:
            return None
        return changed


def _differs(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Per entry of `new`: differs from `old` (entries `old` lacks differ)."""
    out = np.ones(len(new), dtype=bool)
    common = min(len(old), len(new))
    out[:common] = old[:common] != new[:common]
    return out


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
