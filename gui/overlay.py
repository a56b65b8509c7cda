"""Pixels for the canvas layers: the frontier overlay with borders, and selection/hover masks.

Everything is a per-atom lookup table gathered through the atom map (`lut[atom_map]`, one
4-byte or 1-byte gather per pixel). The overlay is a persistent buffer in which an edit
redraws only the pixels of the atoms whose region or colour changed (each atom's pixels are
listed once per atom map, `AtomGeometry`); borders and selection outlines come from the
precomputed list of pixel pairs that straddle two atoms.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

import numpy as np
from PySide6.QtGui import QImage
from scipy.ndimage import find_objects

from core.tree import SegmentTree

BORDER_RGBA = (255, 255, 255, 230)
IGNORED_RGB = (90, 90, 90)
SUGGESTED_ALPHA = 0.5      # a suggested label: its category's colour at this share of the opacity ...
DASH = 3                   # ... and a dashed border: runs of this many border pixels, drawn and left out


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
    index: np.ndarray          # the atom map these describe, as intp (gather indices for the overlay)
    lists: dict[int, np.ndarray] = field(default_factory=dict)   # ... unless a stroke changed them
    revision: int = 0          # counts updates; `touched`: the atoms whose pixels the last one changed,
    touched: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    moved_box: tuple[int, int, int, int] = (0, 0, 0, 0)   # and the box of the pixels (and borders) it changed

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
        self.moved_box = (top, left, bottom, right)
        first_rows, first_cols = np.divmod(self.first, width)
        keep = ~((first_rows >= top) & (first_rows < bottom) & (first_cols >= left) & (first_cols < right))
        first, second = _edges_in(atom_map, top, left, bottom, right)
        self.first = np.concatenate([self.first[keep], first])
        self.second = np.concatenate([self.second[keep], second])
        # a kept edge has neither pixel in the box: its atoms are unchanged
        self.atom_first = np.concatenate([self.atom_first[keep], flat[first]])
        self.atom_second = np.concatenate([self.atom_second[keep], flat[second]])
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
    tree: weakref.ref          # the tree itself (edits replace its atom map; a new tree never matches)
    version: int               # its version when `geometry` (and its `index`) was brought up to date
    geometry: AtomGeometry


_geometry_cache: list[_Cached] = []      # the last one


def atom_geometry(tree: SegmentTree) -> AtomGeometry:
    """The tree's atom geometry, kept up to date as its atom map changes.

    A leaf cut, a brush stroke or their undo change the atom map: the pixels the tree logged
    as changed (else all) are compared with the geometry's copy of the map, and a small change
    updates the geometry instead of rebuilding it (a stroke then costs what it covers).
    """
    cached = _geometry_cache[0] if _geometry_cache else None
    if cached is not None and cached.tree() is tree:
        if cached.version != tree.atom_version:
            cached = _follow(cached, tree)
        if cached is not None:
            return cached.geometry
    geometry = _compute_geometry(tree.atom_map, tree.n_atoms)
    _geometry_cache[:] = [_Cached(weakref.ref(tree), tree.atom_version, geometry)]
    return geometry


def _follow(cached: _Cached, tree: SegmentTree) -> Optional[_Cached]:
    """Update the cached geometry to the tree's atom map; None when a rebuild is cheaper."""
    flat, copy = tree.atom_map.ravel(), cached.geometry.index.ravel()
    candidates = tree.atom_pixels_changed_since(cached.version)
    if candidates is None or candidates.size > flat.size * INCREMENTAL_MAX:
        changed = np.flatnonzero(copy != flat)          # compare everything: as cheap, or no log
    else:
        changed = _distinct(candidates)
        changed = changed[copy[changed] != flat[changed]]
    if changed.size > flat.size * INCREMENTAL_MAX:
        return None
    if changed.size:
        before = copy[changed]
        copy[changed] = flat[changed]
        cached.geometry.update(tree.atom_map, tree.n_atoms, changed, before)
    cached.version = tree.atom_version
    return cached


def _distinct(indices: np.ndarray) -> np.ndarray:
    """Sorted distinct values by a sort (numpy 2.4's hashing np.unique was measured 50x
    slower on 200k pixel indices: many distinct values)."""
    ordered = np.sort(indices)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if ordered.size else ordered


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
    return AtomGeometry(first, second, flat[first], flat[second], boxes, counts, order, starts,
                        atom_map.astype(np.intp))


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
    meet; a region whose category is only suggested is drawn lighter, in the suggested
    category's colour, and its border is dashed. `update` compares each atom's owner and
    colour with the last drawing and redraws only the pixels of the atoms that changed and the
    borders next to them (a merge, a label, an undo touch one or two regions, not the image);
    it returns their bounding box, the
    part of the canvas to repaint. When pixels moved between atoms (a brush stroke, a leaf
    cut, their undo), the box around the moved pixels is redrawn as well, not the atoms they
    left. A new tree, a rebuilt geometry or a change to most of the image is one full gather.
    """

    def __init__(self) -> None:
        self.pixels = np.zeros((0, 0), dtype=np.uint32)
        self._key: tuple = ()
        self._geometry: Optional[AtomGeometry] = None     # the geometry and its revision last drawn
        self._revision = -1
        self._owner = np.zeros(0, dtype=np.int32)     # per atom: the frontier node showing it
        self._colors = np.zeros(0, dtype=np.uint32)   # per atom: its packed colour
        self._suggested = np.zeros(0, dtype=bool)     # per atom: shown with a suggested category

    def update(self, tree: SegmentTree, category_colors: Mapping[int, tuple[int, int, int]],
               opacity: float) -> Optional[Box]:
        """Bring the buffer up to date; the box that was redrawn, or None when nothing changed."""
        owner, colors, suggested = _atom_owner_and_colors(tree, category_colors, opacity)
        geometry = atom_geometry(tree)
        changed, moved = self._changes(tree, geometry, owner, colors)
        if changed is not None:
            changed |= _differs(self._suggested, suggested)
        if changed is not None and not changed.any() and moved is None:
            return None
        if changed is None or geometry.area(changed) + _box_area(moved) > tree.atom_map.size // 4:
            self._gather_all(tree.shape, geometry, colors)     # a new tree, or much changed: one gather
            changed, moved = np.ones(len(owner), dtype=bool), None
            box: Optional[Box] = (0, 0, *tree.shape)
        else:
            box = None
            if changed.any():
                redrawn = geometry.pixels(np.flatnonzero(changed))
                self.pixels.ravel()[redrawn] = colors[tree.atom_map.ravel()[redrawn]]
                top, left, bottom, right = geometry.box(changed)
                # a border lies on the upper / left pixel of a pair: one more row and column can change
                box = (max(top - 1, 0), max(left - 1, 0), bottom, right)
            if moved is not None:
                top, left, bottom, right = moved
                self.pixels[top:bottom, left:right] = colors[tree.atom_map[top:bottom, left:right]]
                box = moved if box is None else _union(box, moved)
        self._key, self._owner, self._colors, self._suggested = (id(tree), tree.shape), owner, colors, suggested
        self._geometry, self._revision = geometry, geometry.revision
        _redraw_borders(self.pixels, geometry, owner, colors, changed, moved, suggested)
        return box

    def _gather_all(self, shape: tuple[int, int], geometry: AtomGeometry, colors: np.ndarray) -> None:
        """Every pixel in its atom's colour, written into the buffer in place (a new 4 MB
        buffer per jump costs page faults) through the geometry's intp copy of the atom map
        (numpy would convert the int32 map on every gather)."""
        if self.pixels.shape != shape:
            self.pixels = np.empty(shape, dtype=np.uint32)
        np.take(colors, geometry.index, out=self.pixels, mode="wrap")    # (no out-of-range index: no wrap)

    def _changes(self, tree: SegmentTree, geometry: AtomGeometry, owner: np.ndarray,
                 colors: np.ndarray) -> tuple[Optional[np.ndarray], Optional[Box]]:
        """Per atom: must all its pixels be redrawn (its region or colour changed)? And the box
        of pixels that moved between atoms (a brush stroke, a leaf cut, their undo), if any.
        None: everything (another tree or atom map, or a geometry that changed twice)."""
        if (id(tree), tree.shape) != self._key or geometry is not self._geometry:
            return None, None
        changed = _differs(self._owner, owner) | _differs(self._colors, colors)
        if geometry.revision == self._revision:
            return changed, None
        if geometry.revision == self._revision + 1:
            return changed, geometry.moved_box
        return None, None


def _box_area(box: Optional[Box]) -> int:
    return 0 if box is None else (box[2] - box[0]) * (box[3] - box[1])


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _differs(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Per entry of `new`: differs from `old` (entries `old` lacks differ)."""
    out = np.ones(len(new), dtype=bool)
    common = min(len(old), len(new))
    out[:common] = old[:common] != new[:common]
    return out


def _atom_owner_and_colors(tree: SegmentTree, category_colors: Mapping[int, tuple[int, int, int]],
                           opacity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per atom: the frontier node that shows it (-1: none), its packed colour, and whether
    its category is only suggested."""
    front = tree.frontier()
    alpha = int(round(255 * opacity))
    colors = np.zeros(len(front) + 1, dtype=np.uint32)     # the last entry: atoms no region holds
    suggested = np.zeros(len(front) + 1, dtype=bool)
    for i, nid in enumerate(front):
        node = tree.nodes[nid]
        category = tree.effective_category(nid)
        shade = alpha
        if node.ignored:
            rgb = IGNORED_RGB
        elif category is not None:
            rgb = category_colors.get(category, node.color)
        else:
            suggestion = tree.live_suggestion(nid) if nid in tree.suggestions else None
            rgb = node.color if suggestion is None else category_colors.get(suggestion.category, node.color)
            if suggestion is not None:
                suggested[i], shade = True, int(round(alpha * SUGGESTED_ALPHA))
        colors[i] = _pack((*rgb, shade if node.visible else 0))
    lut = tree.atom_lut(front)
    return np.append(np.asarray(front, dtype=np.int32), -1)[lut], colors[lut], suggested[lut]


def _redraw_borders(pixels: np.ndarray, geometry: AtomGeometry, owner: np.ndarray, colors: np.ndarray,
                    changed: np.ndarray, moved: Optional[Box] = None,
                    suggested: Optional[np.ndarray] = None) -> None:
    """Redraw the pixels on atom edges next to changed atoms or in the `moved` box: a border
    where the two atoms belong to different regions, else the atom's colour (every edge of
    such a pixel is re-examined, so a border another edge still needs is kept). Next to a
    `suggested` atom the border is dashed."""
    flat = pixels.ravel()
    cut = owner[geometry.atom_first] != owner[geometry.atom_second]
    if moved is not None or not changed.all():     # (all changed: every pixel was just redrawn)
        near = changed[geometry.atom_first] | changed[geometry.atom_second]
        mark = np.zeros(pixels.shape, dtype=bool)
        if moved is not None:
            top, left, bottom, right = moved
            mark[top:bottom, left:right] = True
        mark = mark.ravel()
        mark[geometry.first[near]] = True
        redo = mark[geometry.first]
        flat[geometry.first[redo]] = colors[geometry.atom_first[redo]]
        cut &= redo
    if suggested is not None and suggested.any():
        gaps = np.flatnonzero(cut & (suggested[geometry.atom_first] | suggested[geometry.atom_second]))
        rows, cols = np.divmod(geometry.first[gaps], pixels.shape[1])
        cut[gaps[(rows + cols) // DASH % 2 == 1]] = False
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
