"""The exported regions of one image: a working-resolution label map plus one record per region.

Frontier nodes become regions; ignored nodes (or nodes under an ignored ancestor) are left out,
unlabelled ones too unless a category is given for them, and regions of the categories listed in
`merge` become one region per category (COCO-stuff style). The label map stays at the atom
map's resolution; the full-size map is its nearest-neighbour upsampling, built only by the
exporters that need pixels (panoptic, semantic, polygons). Decision 0005.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Collection, Optional

import numpy as np
from scipy import ndimage

from core.tree import SegmentTree


@dataclass
class Region:
    """One exported region: its category, the frontier nodes it covers, its bounding slices at the
    image size and in the working map, and its area at the image size."""

    category_id: int
    node_ids: list[int]
    iscrowd: int = 0
    slices: tuple[slice, slice] = (slice(0, 0), slice(0, 0))
    area: int = 0
    small_slices: tuple[slice, slice] = (slice(0, 0), slice(0, 0))


@dataclass
class ExportImage:
    """One image's regions on a working-resolution map and how it maps to the image size.

    `small[y, x]` is the index of the region there, -1 where none; working row r covers the image
    rows `row_starts[r]:row_starts[r + 1]` (nearest-neighbour upsampling), columns likewise.
    Full-size outputs are derived from it (`labels`, `crop`, `core.export.rle`) only when needed.
    """

    image_id: int
    file_name: str
    small: np.ndarray
    row_starts: np.ndarray
    col_starts: np.ndarray
    regions: list[Region] = field(default_factory=list)
    empty: int = 0          # regions dropped because they cover no pixel at the image size

    @property
    def height(self) -> int:
        return int(self.row_starts[-1])

    @property
    def width(self) -> int:
        return int(self.col_starts[-1])

    @property
    def upsampled(self) -> bool:
        return self.small.shape != (self.height, self.width)

    @cached_property
    def labels(self) -> np.ndarray:
        """The full-size region index map (int16 when upsampled and the regions fit; built once)."""
        if not self.upsampled:
            return self.small
        small = self.small.astype(np.int16) if len(self.regions) < 2 ** 15 - 1 else self.small
        return upsample_blocks(small, self.row_starts, self.col_starts)

    def crop(self, index: int) -> np.ndarray:
        """The region's full-size mask inside its bounding slices."""
        rows, cols = self.regions[index].small_slices
        small = self.small[rows, cols] == index
        if not self.upsampled:
            return small
        return upsample_blocks(small, self.row_starts[rows.start:rows.stop + 1],
                               self.col_starts[cols.start:cols.stop + 1])


def upsample_blocks(small: np.ndarray, row_starts: np.ndarray, col_starts: np.ndarray) -> np.ndarray:
    """`small` with row r repeated row_starts[r + 1] - row_starts[r] times, columns likewise
    (np.repeat: several times faster than fancy indexing at 100 Mpx)."""
    return np.repeat(np.repeat(small, np.diff(row_starts), axis=0), np.diff(col_starts), axis=1)


@dataclass
class PackedImage:
    """An ExportImage with its working map compressed, kept for the self-check after writing."""

    image: ExportImage
    shape: tuple[int, int]
    dtype: str
    data: bytes

    @classmethod
    def of(cls, image: ExportImage) -> "PackedImage":
        small = image.small.astype(np.int16 if len(image.regions) < 2 ** 15 else np.int32)
        return cls(replace(image, small=np.empty((0, 0), np.int32)), image.small.shape, small.dtype.str,
                   zlib.compress(small.tobytes(), 1))

    def unpack(self) -> ExportImage:
        small = np.frombuffer(zlib.decompress(self.data), dtype=self.dtype).reshape(self.shape)
        return replace(self.image, small=small)            # read-only, in its packed type


def export_image(tree: SegmentTree, image_id: int, file_name: str,
                 category_of: Callable[[Optional[int]], Optional[int]],
                 merge: Collection[int] = (), crowd: Collection[int] = ()) -> ExportImage:
    """Regions of `tree` at its image size; `category_of(effective category)` -> exported id or None."""
    keys: dict[object, int] = {}
    regions: list[Region] = []
    lut = np.full(tree.n_atoms, -1, dtype=np.int32)
    for nid in tree.frontier():
        if _ignored(tree, nid):
            continue
        category = category_of(tree.effective_category(nid))
        if category is None:
            continue
        key: object = ("merged", category) if category in merge else nid
        if key not in keys:
            keys[key] = len(regions)
            regions.append(Region(category, [], int(nid in crowd and key == nid)))
        regions[keys[key]].node_ids.append(nid)
        lut[tree.nodes[nid].atoms] = keys[key]
    small = lut[tree.atom_map]
    height, width = (int(v) for v in tree.image_size)
    if small.shape[0] > height or small.shape[1] > width:      # never larger than the image
        small = upsample_nearest(small, (height, width))
    rows, cols = _nearest_starts(small.shape[0], height), _nearest_starts(small.shape[1], width)
    return _measured(ExportImage(image_id, file_name, small, rows, cols, regions))


def _ignored(tree: SegmentTree, node_id: int) -> bool:
    return any(tree.nodes[n].ignored for n in [node_id] + tree.ancestors(node_id))


def _measured(image: ExportImage) -> ExportImage:
    """Fill each region's slices and area, measured on the working map (each of its pixels weighs
    the full-size pixels it becomes, so a 12000x9000 export never scans the full-size map); drop
    regions with no pixel (renumbering the map)."""
    n = len(image.regions)
    if n == 0:
        return image
    weights = np.outer(np.diff(image.row_starts), np.diff(image.col_starts)).ravel() if image.upsampled else None
    slices = ndimage.find_objects(image.small + 1, max_label=n)
    areas = np.bincount(image.small.ravel() + 1, weights, minlength=n + 1)[1:].astype(np.int64)
    keep = [i for i in range(n) if slices[i] is not None]
    if len(keep) < n:
        remap = np.full(n + 1, -1, dtype=np.int32)
        remap[np.array(keep) + 1] = np.arange(len(keep), dtype=np.int32)
        image.small = remap[image.small + 1]
        image.empty = n - len(keep)
    image.regions = [image.regions[i] for i in keep]
    for region, i in zip(image.regions, keep):
        rows, cols = slices[i]
        region.small_slices = (rows, cols)
        region.slices = (slice(int(image.row_starts[rows.start]), int(image.row_starts[rows.stop])),
                         slice(int(image.col_starts[cols.start]), int(image.col_starts[cols.stop])))
        region.area = int(areas[i])
    return image


def _nearest_sources(n_in: int, n_out: int) -> np.ndarray:
    """For each of n_out output pixels along an axis, the input pixel nearest its centre (non-decreasing)."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


def _nearest_starts(n_in: int, n_out: int) -> np.ndarray:
    """(n_in + 1,) the first of the n_out >= n_in output pixels each input pixel becomes, then n_out."""
    return np.searchsorted(_nearest_sources(n_in, n_out), np.arange(n_in + 1)).astype(np.int64)


def upsample_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (height, width) (pixel centres mapped)."""
    height, width = int(size[0]), int(size[1])
    if labels.shape == (height, width):
        return labels
    if labels.shape[0] <= height and labels.shape[1] <= width:
        return upsample_blocks(labels, _nearest_starts(labels.shape[0], height), _nearest_starts(labels.shape[1], width))
    rows, cols = _nearest_sources(labels.shape[0], height), _nearest_sources(labels.shape[1], width)
    return labels[rows[:, None], cols[None, :]]
