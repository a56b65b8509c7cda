"""Image in, segment tree out: encoder -> cut method -> pixel refinement -> SegmentTree.

Pixel atoms are made so that every node's mask is exactly the union of its children's:
the segments shown at the settings' tau get their pixels by DiffCut's concept assignment
(optionally PAMR-refined), exactly as the reference does at that granularity; inside
each of them the pixels descend the deeper tree, at each split going to the child whose
embedding scores higher; nodes above are unions (docs/decisions/0002-nested-pixel-atoms.md).
Local (classic) features use colour-guided token labels instead of concept assignment
(docs/decisions/0003-classic-pixel-step.md). A method with its own pixel step gives every leaf
its pixels directly (DiffSeg: its proposals upsampled bilinearly, argmax; decision 0305).
"""
from __future__ import annotations

import math
from typing import Optional, Protocol, Sequence

import numpy as np
from PIL import Image
from scipy.cluster.vq import kmeans2
from skimage.color import rgb2lab
from threadpoolctl import threadpool_limits

from core.atoms import AtomGraph, atom_map
from core.cut.contour import contour_split
from core.cut.hierarchy import CutNode, leaves_at
from core.cut.methods import cuts_atoms
from core.cut.ncut import best_bipartition, second_eigenvector
from core.cut.walk import EIGEN_TOL
from core.descriptors import describe
from core.encoders import Encoder, make_encoder
from core.features import Features
from core.jobs import CancelToken, Progress, check_cancel, report
from core.refine import (BilinearSampler, GuidedLabels, absorb_specks, concept_assignment,
                         normalized_tokens, pamr)
from core.settings import Settings
from core.tree import Cutter, Node, SegmentTree, node_color


def mask_shape(image_shape: tuple[int, ...], max_side: int) -> tuple[int, int]:
    """The atom-map size: the image's, scaled down so the long side is at most max_side."""
    h, w = image_shape[:2]
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == shape:
        return image
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


class Segmenter:
    """Keeps one encoder warm and turns its features into segment trees."""

    def __init__(self, settings: Settings, encoder: Optional[Encoder] = None) -> None:
        self.settings = settings
        self._encoder = encoder
        self._last_chooser: Optional[tuple[Features, tuple[int, int], Chooser]] = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = make_encoder(self.settings)
        return self._encoder

    def encode(self, image: np.ndarray, progress: Optional[Progress] = None,
               cancel: Optional[CancelToken] = None) -> Features:
        check_cancel(cancel)
        return self.encoder.encode(image, progress, cancel)

    def cut(self, image: np.ndarray, features: Features, progress: Optional[Progress] = None,
            cancel: Optional[CancelToken] = None, full_size: Optional[tuple[int, int]] = None) -> SegmentTree:
        """The segment tree of `image` from its features (no encoder pass).

        `full_size` is the (height, width) of the original when `image` is a reduced working copy
        of it (image_io.load_working_image): the tree's masks are exported at that size.
        BLAS runs single-threaded here: the many small products of the recursion were
        measured 3-5x slower with threads competing for 2 cores (bench/bench_ncut.py).
        """
        with threadpool_limits(limits=1, user_api="blas"):
            return self._cut(image, features, progress, cancel, full_size or image.shape[:2])

    def _cut(self, image: np.ndarray, features: Features, progress: Optional[Progress],
             cancel: Optional[CancelToken], full_size: tuple[int, int]) -> SegmentTree:
        s = self.settings
        method = s.method_spec
        report(progress, "cut", 0.0)
        root = method.run(features, s, cancel)
        report(progress, "refine", 0.0)
        shape = mask_shape(image.shape, s.max_mask_side)
        small = resized(image, shape)
        if method.pixels is not None:      # the method's own pixel step (DiffSeg's upsampled argmax)
            labels = method.pixels(leaves_of(root), features, shape)
            if s.pamr:
                labels = pamr(small, labels, s.pamr_iterations, s.pamr_dilations)
            leaf_pixels = pixels_by_leaf(root, labels)
        else:
            leaf_pixels = self._chosen_pixels(root, features, small, cancel)
        report(progress, "tree", 0.0)
        tree = build_tree(root, leaf_pixels, shape, full_size)
        tree.set_granularity(s.tau)
        describe(tree, features)          # region descriptors, for label suggestions
        report(progress, "tree", 1.0)
        return tree

    def _chosen_pixels(self, root: CutNode, features: Features, small: np.ndarray,
                       cancel: Optional[CancelToken]) -> dict[int, np.ndarray]:
        """Leaf pixels: the shown segments' by concept assignment (or colour guidance), the
        deeper leaves' by descending the tree (decision 0002)."""
        s, shape = self.settings, small.shape[:2]
        shown = leaves_at(root, s.tau)
        chooser = pixel_chooser(features, small, s.cut_method)
        self._last_chooser = (features, shape, chooser)      # the cutter reuses what it built
        if features.local:
            labels = chooser.choose(shown, np.arange(shape[0] * shape[1])).reshape(shape).astype(np.int32)
            if not s.method_spec.merges_specks:   # contour merges them in its tree (0006)
                labels = absorb_specks(labels, small)
                if isinstance(chooser, AtomChooser):
                    labels = chooser.whole_atoms(labels)
        else:  # DiffCut's concept assignment, exactly as the reference at the shown granularity
            token_labels = np.empty(features.grid[0] * features.grid[1], dtype=np.int32)
            for index, leaf in enumerate(shown):
                token_labels[leaf.tokens] = index
            labels = concept_assignment(features.tokens, token_labels.reshape(features.grid), shape)
        check_cancel(cancel)
        if s.pamr:
            labels = pamr(small, labels, s.pamr_iterations, s.pamr_dilations)
            check_cancel(cancel)
        return descend(root, shown, labels, chooser, cancel)

    def cutter(self, image: np.ndarray, features: Features, shape: tuple[int, int]) -> RegionCutter:
        """A Cutter that splits a region in two: by its tokens' NCut, else by colour. After
        `cut` of the same features it shares the cut's pixel chooser (at 1024 px, 0.8 s of
        colour-guided tables a first split would otherwise rebuild on the GUI thread)."""
        last = self._last_chooser
        chooser = last[2] if last is not None and last[0] is features and last[1] == shape else None
        self._last_chooser = None
        return RegionCutter(image, features, shape, self.settings, chooser)


def leaves_of(root: CutNode) -> list[CutNode]:
    """The tree's leaves, depth first."""
    return [node for node in root.walk() if not node.children]


def pixels_by_leaf(root: CutNode, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Flat pixel indices of every leaf, keyed by id(leaf), from a map of leaf indices."""
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    leaves = leaves_of(root)
    bounds = np.searchsorted(flat[order], np.arange(len(leaves) + 1))
    return {id(leaf): order[bounds[k]:bounds[k + 1]] for k, leaf in enumerate(leaves)}


def segment(image: np.ndarray, settings: Settings, progress: Optional[Progress] = None,
            cancel: Optional[CancelToken] = None) -> SegmentTree:
    """Segment one RGB image into a hierarchical segment tree."""
    segmenter = Segmenter(settings)
    features = segmenter.encode(image, progress, cancel)
    return segmenter.cut(image, features, progress, cancel)


class Chooser(Protocol):
    def choose(self, children: Sequence[CutNode], pixels: np.ndarray) -> np.ndarray:
        """Index of the child each flat pixel index goes to."""

    def release(self) -> None:
        """Drop what `choose` built and can build again (memory held between uses)."""


class ConceptChooser:
    """DiffCut's concept assignment restricted to a node's children (decision 0002)."""

    def __init__(self, tokens: np.ndarray, shape: tuple[int, int]) -> None:
        h, w, c = tokens.shape
        self.grid = (h, w)
        self.flat = normalized_tokens(tokens).reshape(h * w, c)
        self.sampler = BilinearSampler((h, w), shape)

    def choose(self, children: Sequence[CutNode], pixels: np.ndarray) -> np.ndarray:
        emb = np.stack([self.flat[child.tokens].mean(axis=0) for child in children])
        if len(children) == 2:  # one upsampled score difference instead of two scores
            diff = (self.flat @ (emb[0] - emb[1])).reshape(self.grid)
            return (~self.sampler.nonnegative(diff, pixels)).astype(np.int64)
        score_maps = (self.flat @ emb.T).reshape(*self.grid, -1)
        return np.argmax([self.sampler.sample(score_maps[..., k], pixels)
                          for k in range(len(children))], axis=0)

    def release(self) -> None:
        """Nothing is kept beyond the tokens."""


class GuidedChooser:
    """Local features: the children's token labels upsampled with colour guidance."""

    def __init__(self, image: np.ndarray, grid: tuple[int, int]) -> None:
        self.guide = GuidedLabels(image, grid)

    def choose(self, children: Sequence[CutNode], pixels: np.ndarray) -> np.ndarray:
        return self.guide.assign([child.tokens for child in children], pixels)

    def release(self) -> None:
        self.guide.release()


class AtomChooser:
    """Contour atoms (the classic encoder): a pixel goes where its atom goes (decision 0006).
    A pixel whose atom is in none of the children (a speck absorbed from another region, 0008)
    goes with its nearest pixel that has one."""

    def __init__(self, atoms: AtomGraph, shape: tuple[int, int]) -> None:
        self.n = atoms.n
        self.width = shape[1]
        self.atom_of_pixel = atom_map(atoms, shape).ravel()

    def choose(self, children: Sequence[CutNode], pixels: np.ndarray) -> np.ndarray:
        group_of = np.full(self.n, -1, dtype=np.int64)
        for k, child in enumerate(children):
            group_of[child.tokens] = k
        chosen = group_of[self.atom_of_pixel[pixels]]
        orphan = chosen < 0
        if orphan.any():      # each orphan atom goes whole where most of its pixels' nearest go
            atoms = self.atom_of_pixel[pixels[orphan]]
            votes = np.bincount(atoms * len(children) + nearest_choice(pixels, chosen, orphan, self.width),
                                minlength=self.n * len(children)).reshape(self.n, len(children))
            chosen[orphan] = votes.argmax(axis=1)[atoms]
        return chosen

    def whole_atoms(self, labels: np.ndarray) -> np.ndarray:
        """`labels` with every atom's pixels given the label most of them carry (speck absorption
        moves 4-connected pieces, which can be parts of an atom; regions stay unions of atoms)."""
        flat = labels.ravel().astype(np.int64)
        n_labels = int(flat.max()) + 1
        votes = np.bincount(self.atom_of_pixel * n_labels + flat, minlength=self.n * n_labels)
        return votes.reshape(self.n, n_labels).argmax(axis=1)[self.atom_of_pixel].reshape(labels.shape).astype(labels.dtype)

    def release(self) -> None:
        """Nothing is built beyond the atom map."""


def nearest_choice(pixels: np.ndarray, chosen: np.ndarray, orphan: np.ndarray, width: int,
                   margin: int = 4) -> np.ndarray:
    """For the `orphan` pixels (flat indices), the choice of the nearest pixel that has one,
    searched in the orphans' bounding box grown by `margin`, then everywhere."""
    from scipy.spatial import cKDTree
    rows, cols = np.divmod(pixels, width)
    lo_r, hi_r = rows[orphan].min() - margin, rows[orphan].max() + margin
    lo_c, hi_c = cols[orphan].min() - margin, cols[orphan].max() + margin
    known = ~orphan
    near = known & (rows >= lo_r) & (rows <= hi_r) & (cols >= lo_c) & (cols <= hi_c)
    if not near.any():
        near = known
    if not near.any():
        return np.zeros(int(orphan.sum()), dtype=chosen.dtype)
    _, index = cKDTree(np.stack([rows[near], cols[near]], 1)).query(np.stack([rows[orphan], cols[orphan]], 1))
    return chosen[near][index]


def pixel_chooser(features: Features, image: np.ndarray, method: str) -> Chooser:
    """How pixels pick among segments: by atom when the method cuts atoms, guided token labels
    for local features, else concept assignment."""
    if cuts_atoms(method):
        return AtomChooser(features.atoms, image.shape[:2])
    if features.local:
        return GuidedChooser(image, features.grid)
    return ConceptChooser(features.tokens, image.shape[:2])


def descend(root: CutNode, shown: list[CutNode], labels: np.ndarray, chooser: Chooser,
            cancel: Optional[CancelToken] = None) -> dict[int, np.ndarray]:
    """Flat pixel indices of every leaf of `root`, keyed by id(leaf).

    `labels` gives the pixels of each shown node; below it, `chooser` sends them down one
    split at a time.
    """
    order = np.argsort(labels.ravel(), kind="stable")
    bounds = np.searchsorted(labels.ravel()[order], np.arange(len(shown) + 1))
    stack = [(node, order[bounds[i]:bounds[i + 1]]) for i, node in enumerate(shown)]
    out: dict[int, np.ndarray] = {}
    while stack:
        check_cancel(cancel)
        node, pixels = stack.pop()
        if not node.children:
            out[id(node)] = pixels
            continue
        choice = chooser.choose(node.children, pixels)
        stack.extend((child, pixels[choice == k]) for k, child in enumerate(node.children))
    return out


def build_tree(root: CutNode, leaf_pixels: dict[int, np.ndarray], shape: tuple[int, int],
               image_size: tuple[int, int]) -> SegmentTree:
    """SegmentTree over the non-empty leaves; empty nodes dropped, single children spliced.

    A spliced child splits at the larger of its own and its parent's cost: below a parent that
    is shown whole at some granularity, nothing of it may show there (else a region whose
    sibling lost all its pixels showed its own children at the default granularity, with pixels
    that no speck rule had seen)."""
    preorder = list(root.walk())
    kept: dict[int, list[CutNode]] = {}     # id(node) -> its non-empty (spliced) children
    rep: dict[int, CutNode] = {}            # id(node) -> the node that stands for it
    cost: dict[int, float] = {}             # id(node) -> its split cost, once raised by a splice
    for node in reversed(preorder):
        if not node.children:
            if len(leaf_pixels.get(id(node), ())):
                kept[id(node)], rep[id(node)] = [], node
            continue
        children = [rep[id(c)] for c in node.children if id(c) in rep]
        if len(children) == 1:
            rep[id(node)] = only = children[0]
            cost[id(only)] = max(cost.get(id(only), only.cost), node.cost)
        elif children:
            kept[id(node)], rep[id(node)] = children, node
    atom_map = np.zeros(shape[0] * shape[1], dtype=np.int32)
    nodes: dict[int, Node] = {}
    stack: list[tuple[CutNode, Optional[int]]] = [(rep[id(root)], None)]
    n_atoms = 0
    while stack:
        cut, parent = stack.pop()
        nid = len(nodes)
        node = Node(nid, parent, [], np.zeros(0, np.int32),
                    cost=cost.get(id(cut), cut.cost) if kept[id(cut)] else math.inf, color=node_color(nid))
        nodes[nid] = node
        if parent is not None:
            nodes[parent].children.append(nid)
        if kept[id(cut)]:
            stack.extend((child, nid) for child in reversed(kept[id(cut)]))
        else:
            atom_map[leaf_pixels[id(cut)]] = n_atoms
            node.atoms = np.array([n_atoms], dtype=np.int32)
            n_atoms += 1
    for nid in sorted(nodes, reverse=True):
        node = nodes[nid]
        if node.children:
            node.atoms = np.sort(np.concatenate([nodes[c].atoms for c in node.children]))
    for node in nodes.values():
        node.atoms.flags.writeable = False
    return SegmentTree(atom_map.reshape(shape), nodes, 0, image_size)


CORE_COVERAGE = 0.5      # a region's core tokens: at least this share of their cell inside it


class RegionCutter:
    """Splits one region in two: its core tokens' best NCut split on the graph the tree was
    cut on (the method's `leaf_graph`: the walk's W_k, else DiffCut's affinity), or for a
    method that cuts contour atoms its atoms' strongest inner boundary; else 2-means on colour
    (decision 0004)."""

    def __init__(self, image: np.ndarray, features: Features, shape: tuple[int, int],
                 settings: Settings, chooser: Optional[Chooser] = None) -> None:
        self.features = features
        self.settings = settings
        self.shape = shape
        self.image = resized(image, shape)
        self.chooser = chooser or pixel_chooser(features, self.image, settings.cut_method)
        self._graph: Optional[np.ndarray] = None
        self.token_of_pixel = token_of_pixel(features, shape, settings.cut_method)
        self.cell_size = np.bincount(self.token_of_pixel, minlength=features.flat().shape[0])

    def __call__(self, mask: np.ndarray) -> Optional[np.ndarray]:
        pixels = np.flatnonzero(mask)
        if len(pixels) < 2:
            return None
        labels = self._token_split(pixels)
        if labels is None or labels.min() == labels.max():
            labels = self._colour_split(pixels)
        return labels

    def _token_split(self, pixels: np.ndarray) -> Optional[np.ndarray]:
        ids = self._core_tokens(pixels)
        if cuts_atoms(self.settings.cut_method):   # its atoms' strongest inner boundary
            side = contour_split(self.features.atoms, ids)
            if side is None:
                return None
        elif len(ids) < 3:
            return None
        else:
            sub = self.graph()[np.ix_(ids, ids)].astype(np.float64)
            # Regularized spectral clustering (Qin & Rohe, NeurIPS 2013): the mean degree spread
            # over all pairs. A finest region is one the tree would not split; on the bare
            # sub-graph its best cut isolates a boundary token whose affinity lies outside it.
            sub += sub.sum() / len(ids) ** 2
            side, _ = best_bipartition(sub, second_eigenvector(sub, tol=EIGEN_TOL))
        groups = [ids[side], ids[~side]]
        if min(len(g) for g in groups) == 0:
            return None
        root = CutNode(ids, 0.0, [CutNode(g) for g in groups])
        leaves = descend(root, [root], _only(pixels, self.shape), self.chooser)
        out = np.empty(len(pixels), dtype=np.int32)
        for k, child in enumerate(root.children):
            out[np.searchsorted(pixels, np.sort(leaves[id(child)]))] = k
        return out

    def _core_tokens(self, pixels: np.ndarray) -> np.ndarray:
        """The tokens whose cells lie mostly inside the region (all its tokens when fewer than
        three do): a split of cells the region only grazes moves almost no pixel."""
        cells = self.token_of_pixel[pixels]
        inside = np.bincount(cells, minlength=len(self.cell_size))
        ids = np.flatnonzero(inside)
        core = ids[inside[ids] >= CORE_COVERAGE * self.cell_size[ids]]
        return core if len(core) >= 3 else ids

    def graph(self) -> np.ndarray:
        """The token graph the tree was cut on (built on the first cut)."""
        if self._graph is None:
            self._graph = self.settings.method_spec.leaf_graph(self.features, self.settings)
        return self._graph

    def release(self) -> None:
        """Drop the tables built for cutting (tens of MB per image); a later cut rebuilds them."""
        self.chooser.release()
        self._graph = None

    def _colour_split(self, pixels: np.ndarray) -> Optional[np.ndarray]:
        lab = rgb2lab(self.image.reshape(-1, 3)[pixels][None])[0]      # the region's pixels only
        if np.ptp(lab, axis=0).max() < 1e-6:
            return None
        _, labels = kmeans2(lab.astype(np.float64), 2, minit="++", seed=0)
        return labels.astype(np.int32)


def token_of_pixel(features: Features, shape: tuple[int, int], method: str) -> np.ndarray:
    """The token (atom, or grid cell) each flat pixel of a `shape` map lies in."""
    if cuts_atoms(method):
        return atom_map(features.atoms, shape).ravel()
    h, w = features.grid
    rows = np.minimum(np.arange(shape[0]) * h // shape[0], h - 1)
    cols = np.minimum(np.arange(shape[1]) * w // shape[1], w - 1)
    return (rows[:, None] * w + cols[None, :]).ravel()


def _only(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label map with 0 on `pixels` and 1 elsewhere, so `descend` sees just the region."""
    labels = np.ones(shape[0] * shape[1], dtype=np.int32)
    labels[pixels] = 0
    return labels.reshape(shape)
