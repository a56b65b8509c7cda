"""Label maps and colour overlays of a segment tree's frontier, at the image's size."""
from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries

from core.tree import SegmentTree


def frontier_label_image(tree: SegmentTree) -> np.ndarray:
    """(H, W) int32 frontier indices 0..K-1 at the original image size (nearest upsampling)."""
    labels, _ = tree.frontier_labels()
    height, width = tree.image_size
    if labels.shape == (height, width):
        return labels
    return np.asarray(Image.fromarray(labels).resize((width, height), Image.Resampling.NEAREST))


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


def save_label_png(path, labels: np.ndarray) -> None:
    """A single-channel PNG: 8-bit when the labels fit, 16-bit otherwise."""
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    Image.fromarray(labels.astype(dtype)).save(path)
