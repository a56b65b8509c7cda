"""Label maps and colour overlays of a segment tree's frontier, at the image's size."""
from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

from core.atomic_io import png_bytes
from core.errors import CutTreeError
from core.export.regions import upsample_nearest
from core.tree import SegmentTree


def frontier_label_image(tree: SegmentTree) -> np.ndarray:
    """(H, W) frontier indices 0..K-1 at the original image size (nearest upsampling, the same
    pixel mapping as the COCO masks: Pillow's NEAREST rounds some centres the other way), in the
    smallest unsigned type that holds them (uint8 or uint16; int32 past 65535 segments), so a
    12000x9000 map costs 108 MB, not 432."""
    labels, _ = tree.frontier_labels()
    count = int(labels.max(initial=0)) + 1
    dtype = np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.int32
    return upsample_nearest(labels.astype(dtype), tree.image_size)    # the COCO export's pixel mapping


def overlay(image: np.ndarray, labels: np.ndarray, colors: np.ndarray, opacity: float = 0.45,
            borders: bool = True) -> np.ndarray:
    """The image with each label tinted by `colors[label]` and dark region borders."""
    tint = colors[labels].astype(np.float32)
    out = (1 - opacity) * image.astype(np.float32) + opacity * tint
    if borders:
        out[find_boundaries(labels, mode="inner")] = (20, 20, 20)
    return np.clip(out, 0, 255).astype(np.uint8)


def frontier_colors(tree: SegmentTree) -> np.ndarray:
    """(K, 3) uint8 colours of the frontier nodes, in frontier order."""
    return np.array([tree.nodes[n].color for n in tree.frontier()], dtype=np.uint8).reshape(-1, 3)


def label_png_bytes(tree: SegmentTree) -> bytes:
    """The frontier label map at the image size as a single-channel PNG (8-bit when it fits, else 16-bit)."""
    labels = frontier_label_image(tree)
    if labels.dtype == np.int32:
        raise CutTreeError(f"{labels.max() + 1} segments do not fit a 16-bit label PNG (at most 65536)")
    return png_bytes(labels, compress_level=1)
