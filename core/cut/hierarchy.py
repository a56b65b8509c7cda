"""The token-level cut hierarchy every cut method produces.

Granularity contract, shared by all methods: a node is split at granularity g iff it has
children and `cost < g`. The partition at g is therefore a pruning of one tree computed once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np


@dataclass
class CutNode:
    """A set of tokens (ids into the row-major h*w grid) and, if split, its children.

    `signal`: what a leaf's pixels are chosen by when its method has its own pixel step
    (DiffSeg: the leaf's merged attention map on the attention grid), else None."""

    tokens: np.ndarray
    cost: float = math.inf
    children: list["CutNode"] = field(default_factory=list)
    signal: Optional[np.ndarray] = None

    def is_split_at(self, granularity: float) -> bool:
        return bool(self.children) and self.cost < granularity

    def walk(self) -> Iterator["CutNode"]:
        """All nodes, depth first, pre-order, children in order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def leaves_at(root: CutNode, granularity: float) -> list[CutNode]:
    """The nodes shown as segments at this granularity, in depth-first order."""
    out: list[CutNode] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_split_at(granularity):
            stack.extend(reversed(node.children))
        else:
            out.append(node)
    return out


def label_tokens(root: CutNode, grid: tuple[int, int], granularity: float) -> np.ndarray:
    """An (h, w) int32 map of segment indices 0..K-1 (depth-first order) at this granularity."""
    labels = np.full(grid[0] * grid[1], -1, dtype=np.int32)
    for index, leaf in enumerate(leaves_at(root, granularity)):
        labels[leaf.tokens] = index
    return labels.reshape(grid)
