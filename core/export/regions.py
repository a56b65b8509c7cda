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
    """One image's regions; `labels[y, x]` is the index of the region there, -1 where none."""

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
        return replace(self.image, labels=labels.astype(np.int32))


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
    labels = upsample_nearest(lut[tree.atom_map], tree.image_size)
    return _measured(ExportImage(image_id, file_name, labels, regions))


def _ignored(tree: SegmentTree, node_id: int) -> bool:
    return any(tree.nodes[n].ignored for n in [node_id] + tree.ancestors(node_id))


def _measured(image: ExportImage) -> ExportImage:
    """Fill each region's slices and area; drop regions with no pixel (renumbering the map)."""
    n = len(image.regions)
    if n == 0:
        return image
    slices = ndimage.find_objects(image.labels + 1, max_label=n)
    areas = np.bincount(image.labels.ravel() + 1, minlength=n + 1)[1:]
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


def upsample_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (height, width) (pixel centres mapped)."""
    height, width = int(size[0]), int(size[1])
    if labels.shape == (height, width):
        return labels
    rows = np.minimum(((np.arange(height) + 0.5) * labels.shape[0] / height).astype(np.int64), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * labels.shape[1] / width).astype(np.int64), labels.shape[1] - 1)
    return labels[rows[:, None], cols[None, :]]
