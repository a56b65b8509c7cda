"""The exported regions of one image: a full-resolution label map plus one record per region.

Frontier nodes become regions; ignored nodes (or nodes under an ignored ancestor) are left out,
unlabelled ones too unless a category is given for them, and regions of the categories listed in
`merge` become one region per category (COCO-stuff style). The label map is built at the atom
map's resolution and upsampled nearest-neighbour to the real image size when they differ.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Callable, Collection, Optional

import numpy as np
from scipy import ndimage

from core.tree import SegmentTree


@dataclass
class Region:
    """One exported region: its category, the frontier nodes it covers and its bounding slices."""

    category_id: int
    node_ids: list[int]
    iscrowd: int = 0
    slices: tuple[slice, slice] = (slice(0, 0), slice(0, 0))
    area: int = 0


@dataclass
class ExportImage:
    """One image's regions; `labels[y, x]` is the index of the region there, -1 where none
    (a signed integer map: int16 when upsampled and the regions fit, else int32)."""

    image_id: int
    file_name: str
    labels: np.ndarray
    regions: list[Region] = field(default_factory=list)
    empty: int = 0          # regions dropped because they cover no pixel at the image size

    @property
    def height(self) -> int:
        return int(self.labels.shape[0])

    @property
    def width(self) -> int:
        return int(self.labels.shape[1])

    def crop(self, index: int) -> np.ndarray:
        """The region's mask inside its bounding slices."""
        return self.labels[self.regions[index].slices] == index


@dataclass
class PackedImage:
    """An ExportImage with its label map compressed, kept for the self-check after writing."""

    image: ExportImage
    shape: tuple[int, int]
    dtype: str
    data: bytes

    @classmethod
    def of(cls, image: ExportImage) -> "PackedImage":
        small = image.labels.astype(np.int16 if len(image.regions) < 2 ** 15 else np.int32)
        return cls(replace(image, labels=np.empty((0, 0), np.int32)), image.labels.shape, small.dtype.str,
                   zlib.compress(small.tobytes(), 1))

    def unpack(self) -> ExportImage:
        labels = np.frombuffer(zlib.decompress(self.data), dtype=self.dtype).reshape(self.shape)
        return replace(self.image, labels=labels)            # read-only, in its packed type


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
    if small.shape[0] <= tree.image_size[0] and small.shape[1] <= tree.image_size[1]:
        return _measured_upsampled(ExportImage(image_id, file_name, small, regions), tree.image_size)
    return _measured(ExportImage(image_id, file_name, upsample_nearest(small, tree.image_size), regions))


def _ignored(tree: SegmentTree, node_id: int) -> bool:
    return any(tree.nodes[n].ignored for n in [node_id] + tree.ancestors(node_id))


def _measured(image: ExportImage, weights: Optional[np.ndarray] = None) -> ExportImage:
    """Fill each region's slices and area (each pixel counting `weights` pixels, default one);
    drop regions with no pixel (renumbering the map)."""
    n = len(image.regions)
    if n == 0:
        return image
    slices = ndimage.find_objects(image.labels + 1, max_label=n)
    areas = np.bincount(image.labels.ravel() + 1, weights, minlength=n + 1)[1:].astype(np.int64)
    keep = [i for i in range(n) if slices[i] is not None]
    if len(keep) < n:
        remap = np.full(n + 1, -1, dtype=np.int32)
        remap[np.array(keep) + 1] = np.arange(len(keep), dtype=np.int32)
        image.labels = remap[image.labels + 1]
        image.empty = n - len(keep)
    image.regions = [image.regions[i] for i in keep]
    for region, i in zip(image.regions, keep):
        region.slices = slices[i]
        region.area = int(areas[i])
    return image


def _measured_upsampled(image: ExportImage, size: tuple[int, int]) -> ExportImage:
    """`_measured` for a label map that nearest upsampling only enlarges: areas and slices are
    computed on the small map (each of its pixels weighs the full-size pixels it becomes), so
    a 12000x9000 export never scans, copies or counts the full-size map."""
    rows, cols = _nearest_sources(image.labels.shape[0], size[0]), _nearest_sources(image.labels.shape[1], size[1])
    image = _measured(image, np.outer(np.bincount(rows), np.bincount(cols)).ravel())
    for region in image.regions:
        r, c = region.slices
        region.slices = (slice(*map(int, np.searchsorted(rows, [r.start, r.stop]))),
                         slice(*map(int, np.searchsorted(cols, [c.start, c.stop]))))
    small = image.labels.astype(np.int16) if len(image.regions) < 2 ** 15 - 1 else image.labels
    image.labels = small[rows[:, None], cols[None, :]]     # int16: half the memory at 108 Mpx
    return image


def _nearest_sources(n_in: int, n_out: int) -> np.ndarray:
    """For each of n_out output pixels along an axis, the input pixel nearest its centre (non-decreasing)."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


def upsample_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (height, width) (pixel centres mapped)."""
    height, width = int(size[0]), int(size[1])
    if labels.shape == (height, width):
        return labels
    rows, cols = _nearest_sources(labels.shape[0], height), _nearest_sources(labels.shape[1], width)
    return labels[rows[:, None], cols[None, :]]
