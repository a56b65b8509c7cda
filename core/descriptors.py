"""Region descriptors: the encoder's token features pooled over a region's pixels.

A tree keeps its image's descriptor grid (`SegmentTree.descriptors`); the descriptor of any
node, at any granularity and after any edit, is the mean of the grid's token features weighted
by the share of each token cell the node covers, as DiffCut's mask pooling (Couairon et al.,
CVPR 2025, the region embedding of its open-vocabulary step). Pooling is linear in pixels, so
it is done once per atom and summed per node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.encoders import Encoder, make_encoder
from core.errors import CutTreeError
from core.features import Features
from core.image_io import load_image
from core.settings import Settings

#: descriptor grids are stored as float16: a 32x32x1280 diffusion grid is 2.6 MB per tree file
STORED_DTYPE = np.float16


@dataclass
class DescriptorGrid:
    """(h, w, d) token features and the encoder that made them (descriptors of different
    encoders cannot be compared)."""

    values: np.ndarray
    source: str
    _cache: Optional[tuple] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values.ndim != 3 or min(self.values.shape) < 1:
            raise ValueError(f"descriptor grid must be (h, w, d), got shape {self.values.shape}")
        self.values = np.ascontiguousarray(self.values, dtype=STORED_DTYPE)

    @property
    def dim(self) -> int:
        return int(self.values.shape[2])


def descriptor_grid(features: Features) -> DescriptorGrid:
    """The grid regions are described by: the encoder's descriptor features, else its tokens."""
    values = features.tokens if features.descriptors is None else features.descriptors
    return DescriptorGrid(values, features.encoder)


def token_cells(shape: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """Flat token index of every pixel of an image of `shape` under an (h, w) token grid."""
    h, w = grid
    rows = np.minimum(np.arange(shape[0]) * h // shape[0], h - 1)
    cols = np.minimum(np.arange(shape[1]) * w // shape[1], w - 1)
    return (rows[:, None] * w + cols[None, :]).ravel()


def _mask_share(grid: DescriptorGrid, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of each token cell inside the mask, the (cells, d) token features)."""
    h, w, d = grid.values.shape
    cells = token_cells(mask.shape, (h, w))
    share = (np.bincount(cells[mask.ravel()], minlength=h * w)
             / np.maximum(np.bincount(cells, minlength=h * w), 1))
    return share, grid.values.reshape(h * w, d).astype(np.float64)


def pooled(grid: DescriptorGrid, mask: np.ndarray) -> np.ndarray:
    """The descriptor of one pixel mask, straight from its definition (token features weighted
    by the share of each token cell inside the mask)."""
    share, values = _mask_share(grid, mask)
    return share @ values / share.sum()


def pooled_spread(grid: DescriptorGrid, mask: np.ndarray) -> np.ndarray:
    """The per-dimension standard deviation of the token features inside one pixel mask, with
    the weights of `pooled`, straight from its definition."""
    share, values = _mask_share(grid, mask)
    mean = share @ values / share.sum()
    return np.sqrt(share @ (values - mean) ** 2 / share.sum())


def _atom_pool(tree, grid: DescriptorGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per atom: its weighted feature sum and sum of squares (n_atoms, d each) and its total
    weight, cached per atom map."""
    key = (id(tree.atom_map), tree.atom_version, tree.n_atoms)
    if grid._cache is not None and grid._cache[0] == key:
        return grid._cache[1:]
    h, w, d = grid.values.shape
    cells = token_cells(tree.shape, (h, w))
    n_cells = h * w
    cover = np.bincount(tree.atom_map.ravel().astype(np.int64) * n_cells + cells,
                        minlength=tree.n_atoms * n_cells).reshape(tree.n_atoms, n_cells)
    share = cover / np.maximum(np.bincount(cells, minlength=n_cells), 1)
    values = grid.values.reshape(n_cells, d).astype(np.float64)
    sums, squares = share @ values, share @ values ** 2
    weights = share.sum(axis=1)
    grid._cache = (key, sums, squares, weights)
    return sums, squares, weights


def node_descriptors(tree, node_ids: Sequence[int]) -> np.ndarray:
    """(len(node_ids), d) descriptors of the tree's nodes; the tree must have a grid."""
    return node_statistics(tree, node_ids)[:, :tree.descriptors.dim]


def node_statistics(tree, node_ids: Sequence[int]) -> np.ndarray:
    """(len(node_ids), 2d): each node's descriptor and the spread (standard deviation) of the
    token features inside it, which tells a uniform region from a mix of two kinds."""
    grid = tree.descriptors
    if grid is None:
        raise ValueError("this tree has no descriptor grid")
    sums, squares, weights = _atom_pool(tree, grid)
    out = np.empty((len(node_ids), 2 * grid.dim), dtype=np.float64)
    for row, nid in enumerate(node_ids):
        atoms = tree.nodes[nid].atoms
        total = max(weights[atoms].sum(), 1e-12)
        mean = sums[atoms].sum(axis=0) / total
        out[row, :grid.dim] = mean
        out[row, grid.dim:] = np.sqrt(np.maximum(squares[atoms].sum(axis=0) / total - mean ** 2, 0.0))
    return out


def describe(tree, features: Features) -> None:
    """Give a tree the descriptor grid of its image's features (pipeline and import)."""
    tree.descriptors = descriptor_grid(features)


class ImageDescriber:
    """Gives trees made without the encoder (imported regions) the descriptors of their image:
    the image is encoded with the project's settings and the features pooled over the regions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._encoder: Optional[Encoder] = None

    def __call__(self, tree, image_path: Path) -> Optional[str]:
        """Describe `tree` from the image file; a one-line problem (naming the file) or None."""
        try:
            image = load_image(image_path)
            if self._encoder is None:
                self._encoder = make_encoder(self.settings)
            describe(tree, self._encoder.encode(image))
        except CutTreeError as exc:
            return f"{image_path}: no region descriptors, so no label suggestions from or for it ({exc})"
        return None
