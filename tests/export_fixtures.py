"""Shared fixtures for the export/import tests: a label map with the hard cases of COCO exports."""
from __future__ import annotations

import numpy as np

from core.project import Category
from core.tree import SegmentTree

CATEGORIES = [Category(1, "cat", (200, 40, 40), True), Category(2, "dog", (40, 200, 40), True),
              Category(3, "sky", (40, 40, 200), False), Category(4, "grass", (90, 160, 20), False)]


def hard_labels() -> np.ndarray:
    """24x32 labels: a ring with a hole (1) and its content (2), a two-part region (3), a one-pixel
    region (4), a strip along the top border (5), diagonal-only pixels (6), background 0."""
    labels = np.zeros((24, 32), dtype=np.int32)
    labels[2:13, 2:15] = 1
    labels[5:10, 5:12] = 2
    labels[15:21, 1:6] = 3
    labels[15:21, 25:32] = 3
    labels[22, 10] = 4
    labels[0:2, :] = 5
    for k in range(3):
        labels[14 + k, 16 + k] = 6
    return labels


def hard_tree() -> SegmentTree:
    """The hard labels as a flat tree; regions labelled with a mix of thing and stuff categories."""
    tree = SegmentTree.flat(hard_labels())
    node = {label: label + 1 for label in range(7)}   # flat(): region of label k is node k + 1
    tree.label([node[1], node[4]], 1)
    tree.label([node[2], node[6]], 2)
    tree.label([node[3]], 4)
    tree.label([node[5]], 3)
    return tree


def region_masks(labels: np.ndarray) -> list[np.ndarray]:
    return [labels == k for k in np.unique(labels)]
