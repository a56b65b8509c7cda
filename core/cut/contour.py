"""The contour method: the random-walk NCut above the default granularity, contour merges below.

Above: the walk tree on the token grid (core.cut.walk) down to its automatic threshold, the
default granularity; each of its leaves takes the contour atoms (core.atoms) most of whose
pixels the colour-guided upsampling of its tokens claims, so boundaries follow image edges.
Measured not better than the walk on BSDS500 and so not the default (decision 0006).

Below: inside each walk leaf, its atoms merge greedily, weakest dissimilarity first, until
one region is left, after the OWT-UCM of Arbelaez, Maire, Fowlkes and Malik ("Contour
Detection and Hierarchical Image Segmentation", TPAMI 2011, section 4.2). The dissimilarity of
two adjacent regions is the geometric mean of the mean contour strength along their common
boundary and the distance of their mean colours (CIELAB), so a boundary must be both sharp
and separate different regions. Regions smaller than MIN_AREA of the image have it
discounted by the factor size / MIN_AREA, the smaller of the pair counting: small regions merge
first and survive only with proportionally stronger contrast (no speckle). The height at
which a region forms, made monotone, is an ultrametric; the split of a region of height h
costs REF + log(H0 / h) / LOG_RANGE, so at the default granularity the walk's regions are
shown split along every boundary of height above H0: small high-contrast things (poles,
signs, people) that the coarse token grid cannot separate.

Granularity contract as every method: a node splits at g iff cost < g.
"""
from __future__ import annotations

import heapq
import math
from typing import Optional

import numpy as np

from core.atoms import AtomGraph
from core.cut.hierarchy import CutNode, leaves_at
from core.cut.walk import walk_graph, walk_tree
from core.features import Features
from core.jobs import CancelToken, check_cancel
from core.refine import GuidedLabels
from core.settings import Settings

#: regions below this share of the image are discounted (no speckle at the default granularity)
MIN_AREA = 0.0005
#: the region dissimilarity (Lab units) above which regions are split at the default granularity
H0 = 11.0
#: granularity per e-fold of dissimilarity
LOG_RANGE = 4.6
#: the walk builds the levels up to this granularity, its automatic threshold
REFERENCE_GRANULARITY = Settings.tau


def height_cost(height: float) -> float:
    """Granularity cost of splitting a region formed at this dissimilarity."""
    if height <= 0:
        return math.inf
    return max(0.0, REFERENCE_GRANULARITY + math.log(H0 / height) / LOG_RANGE)


def merge_forest(graph: AtomGraph, group: np.ndarray, cancel: Optional[CancelToken] = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy merging of adjacent atoms of the same group: (m, 2) merged node ids and heights.

    Atoms are nodes 0..n-1; the k-th merge makes node n + k. Atoms of different groups never
    merge, so each group ends as its own root.
    """
    n = graph.n
    min_area = MIN_AREA * float(graph.sizes.sum())
    size = graph.sizes.tolist()
    mean = (graph.lab_sum / np.maximum(graph.sizes, 1)[:, None]).tolist()
    inside = group[graph.edges[:, 0]] == group[graph.edges[:, 1]]
    neighbours: list[dict[int, list[float]]] = [dict() for _ in range(n)]
    for (i, j), s, length in zip(graph.edges[inside].tolist(), graph.edge_strength[inside].tolist(),
                                 graph.edge_length[inside].tolist()):
        neighbours[i][j] = neighbours[j][i] = [s, length]
    height = [0.0] * n
    alive = [True] * n

    def key(i: int, j: int, edge: list[float]) -> float:
        colour = math.dist(mean[i], mean[j])
        small = min(size[i], size[j]) / min_area
        return math.sqrt(edge[0] / edge[1] * colour) * min(small, 1.0)

    heap = [(key(i, j, e), i, j) for i in range(n) for j, e in neighbours[i].items() if i < j]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while heap:
        k, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        if len(merges) % 256 == 0:
            check_cancel(cancel)
        new = len(size)
        alive[i] = alive[j] = False
        si, sj = size[i], size[j]
        size.append(si + sj)
        mean.append([(a * si + b * sj) / (si + sj) for a, b in zip(mean[i], mean[j])])
        height.append(max(k, height[i], height[j]))
        alive.append(True)
        joined: dict[int, list[float]] = {}
        for old in (i, j):
            for other, edge in neighbours[old].items():
                if other in (i, j):
                    continue
                del neighbours[other][old]
                acc = joined.setdefault(other, [0.0, 0.0])
                acc[0] += edge[0]
                acc[1] += edge[1]
            neighbours[old] = {}
        neighbours.append(joined)
        for other, edge in joined.items():
            neighbours[other][new] = edge
            heapq.heappush(heap, (key(new, other, edge), new, other))
        merges.append((i, j))
    return np.array(merges, dtype=np.int64).reshape(-1, 2), np.array(height[n:])


def atoms_of_groups(graph: AtomGraph, grid: tuple[int, int], groups: list[np.ndarray]) -> np.ndarray:
    """The group of each atom: the one most of its pixels choose by the colour-guided upsampling
    of the token groups (core.refine.GuidedLabels, decision 0003)."""
    pixels = np.arange(graph.labels.size)
    pixel_group = GuidedLabels(graph.image, grid).assign(groups, pixels).astype(np.int64)
    k = len(groups)
    votes = np.bincount(graph.labels.ravel().astype(np.int64) * k + pixel_group, minlength=graph.n * k)
    return votes.reshape(graph.n, k).argmax(axis=1)


def forest_nodes(graph: AtomGraph, group: np.ndarray, merges: np.ndarray, heights: np.ndarray,
                 tau_max: float) -> dict[int, CutNode]:
    """CutNodes (atom ids) of the merge forest's roots, keyed by group; splits with cost >=
    tau_max are not kept (their region is a leaf)."""
    n = graph.n
    total = n + len(merges)
    parent = np.full(total, -1, dtype=np.int64)
    parent[merges.ravel()] = np.repeat(np.arange(n, total), 2)
    roots = np.flatnonzero(parent < 0)
    # leaf order of a depth-first walk: every node's atoms are one contiguous slice of it
    order, start, end = [], np.zeros(total, np.int64), np.zeros(total, np.int64)
    for root in roots.tolist():
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                end[node] = len(order)
                continue
            start[node] = len(order)
            if node < n:
                order.append(node)
                end[node] = len(order)
                continue
            stack.append((node, True))
            stack.extend((int(c), False) for c in reversed(merges[node - n]))
    atoms = np.array(order, dtype=np.int64)
    out: dict[int, CutNode] = {}
    for root in roots.tolist():
        top = CutNode(atoms[start[root]:end[root]])
        stack2 = [(root, top)]
        while stack2:
            node, cut = stack2.pop()
            if node < n:
                continue
            cost = height_cost(float(heights[node - n]))
            if cost < tau_max:
                children = [int(c) for c in merges[node - n]]
                cut.cost = cost
                cut.children = [CutNode(atoms[start[c]:end[c]]) for c in children]
                stack2.extend(zip(children, cut.children))
        out[int(group[atoms[start[root]]])] = top
    return out


def contour_split(graph: AtomGraph, ids: np.ndarray) -> Optional[np.ndarray]:
    """Split a set of atoms in two along its strongest internal boundary: the last of its
    greedy merges (a side mask over `ids`), or None for fewer than two atoms."""
    if len(ids) < 2:
        return None
    group = -1 - np.arange(graph.n)          # atoms outside never merge
    group[ids] = 0
    merges, _ = merge_forest(graph, group)
    n = graph.n
    total = n + len(merges)
    parent = np.full(total, -1, dtype=np.int64)
    if len(merges):
        parent[merges.ravel()] = np.repeat(np.arange(n, total), 2)
    roots = [int(r) for r in np.flatnonzero(parent < 0) if r >= n or group[r] == 0]
    # one root: its two children; several (disconnected atoms): the first root against the rest
    first = int(merges[roots[0] - n][0]) if len(roots) == 1 else roots[0]
    side = {first}
    stack = [first]
    while stack:
        node = stack.pop()
        if node >= n:
            stack.extend(int(c) for c in merges[node - n])
            side.update(int(c) for c in merges[node - n])
    return np.isin(ids, [a for a in side if a < n])


def contour_hierarchy(features: Features, settings: Settings,
                      cancel: Optional[CancelToken] = None) -> CutNode:
    """The walk tree to the default granularity, contour merges below; node ids are atom ids."""
    graph = features.atoms
    if graph is None:
        raise ValueError("the contour method needs contour atoms: use the classic encoder")
    w, null = walk_graph(features, settings)
    check_cancel(cancel)
    top = walk_tree(w, null, min(settings.tau_max, REFERENCE_GRANULARITY), settings.min_tokens, cancel)
    leaves = leaves_at(top, math.inf)
    group = atoms_of_groups(graph, features.grid, [leaf.tokens for leaf in leaves])
    merges, heights = merge_forest(graph, group, cancel)
    below = forest_nodes(graph, group, merges, heights, settings.tau_max)
    for index, leaf in enumerate(leaves):
        sub = below.get(index)
        leaf.tokens = sub.tokens if sub is not None else np.zeros(0, np.int64)
        if sub is not None:
            leaf.cost, leaf.children = sub.cost, sub.children
    walk_leaves = {id(leaf) for leaf in leaves}
    for node in reversed(list(top.walk())):          # unions of the children's atoms
        if node.children and id(node) not in walk_leaves:
            node.tokens = np.concatenate([c.tokens for c in node.children])
    return top
