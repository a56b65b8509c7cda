"""The atom walk: the random-walk NCut (core.cut.walk) on a sparse graph of contour atoms.

The walk method cuts a dense graph of grid tokens (~30 px cells on CamVid), so nothing smaller
than a cell is ever its own region, and a finer grid is cubic in cost (decision 0007). Here
the nodes are the contour atoms (core.atoms, ~4 per token, following image edges), each linked
to the atoms within RADIUS token cells, which keeps the graph sparse:

- W: atoms I, J weigh their areas times a Gaussian of their distance (KERNEL cells, the token
  walk's kernel reach), of the difference of their mean CIELAB colour and token-scale texture
  (the encoder's scaled cues, CUE_WEIGHT), and exp(-b / BOUNDARY_SCALE) of the strongest contour
  b on the straight segment between their centroids: the intervening-contour affinity of
  Fowlkes, Martin and Malik (CVPR 2003), so one weak stretch of boundary does not join two
  regions. Each atom's self-loop equals its other weights (a lazy walk: eigenvalues in [0, 1]).
- k-step walk without a dense matrix power: for a symmetric W, Pi P^k = F F^T with
  F = D^1/2 U Lambda^(k/2) / sqrt(vol), U, Lambda the eigenpairs of D^-1/2 W D^-1/2 (diffusion
  maps, Coifman & Lafon, ACHA 2006). Only the N_EIGEN dominant pairs are kept (the rest decay
  as lambda^k); they come from k/2 steps of subspace iteration on the sparse matrix. A node's
  sub-problem is then an (N_EIGEN, N_EIGEN) eigenproblem and its threshold sweep prefix sums of
  F's rows, whatever the atom count.
- Automatic k and threshold as the walk (decision 0302): k makes the walk's per-axis spread
  SPREAD of the long side; a split's NCut is divided by the same split's NCut under a
  Gaussian walk on atom centroids (weighted by area, summed exactly: SpatialNull) with
  that spread, and costs follow `core.cut.walk.ratio_cost` with the atom walk's own automatic
  threshold ATOM_AUTO_RATIO (decision 0008, fifth round).
- A split tries the best threshold sweep along each of the node's CANDIDATES leading
  eigenvectors and keeps the one of lowest ratio (decision 0008, seventh round). Shi and Malik
  (PAMI 2000) already noted that the later eigenvectors also carry good partitions; Alpert, Kahng
  and Yao (Discrete Applied Mathematics 90, 1999) partition with several. Here the ratio to the
  null decides, not the relaxed NCut, which the second eigenvector alone minimises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy import ndimage

from core.atoms import AtomGraph
from core.cut.hierarchy import CutNode
from core.cut.ncut import N_THRESHOLDS
from core.cut.walk import SPREAD, ratio_cost
from core.features import Features
from core.jobs import CancelToken, check_cancel
from core.settings import Settings

#: eigenpairs of the atom graph kept for the k-step walk (the rest decay as lambda^k); 256
#: against 160: BSDS PRI +0.012, CamVid oracle +0.02, +0.3 s per 1024x768 photo (0008)
N_EIGEN = 256
#: contour strength (Lab units, core.atoms.contour_strength) that divides an edge weight by e
BOUNDARY_SCALE = 8.0
#: colour and texture kernel exp(-CUE_WEIGHT |dcue|^2) in the encoder's scaled cue units: the
#: token walk's (cosine^alpha of the encoder's random Fourier features ~ exp(-alpha/2 |d|^2), alpha 10)
CUE_WEIGHT = 5.0
#: atoms are linked to all atoms within RADIUS token cells, by a Gaussian of KERNEL cells
RADIUS = 3.0
KERNEL = 1.0
#: the least share of the spatial kernel any link keeps, so that no atom of a rare colour is cut
#: off from the graph (with none, splits of nodes whose atoms' low-rank degrees vanish fail and
#: the tree stops); its leak over k steps, about FLOOR sqrt(k), stays far below AUTO_RATIO
FLOOR = 0.001
#: the ratio at the default granularity: the atom walk's boundary ratios run ~2.5x the token
#: walk's, and at this one it shows about as many regions as the token walk at its default
#: (CamVid val 39 per frame against 29, BSDS val 36 per image against 41), so a user switching
#: methods keeps about the same detail (0.7 until the surround-suppressed contours of decision
#: 0008, sixth round, which showed 41 and 42 at 0.7). Since the split candidates of its seventh
#: round 0.52 would give 33 per frame again, but bulk-accepted suggestions were then 93 % right
#: (K = 3) against 97 % at 0.6: larger regions mix classes
ATOM_AUTO_RATIO = 0.6
#: an atom whose k-step degree within its node is below this share of the node's median is not
#: placed by the truncated walk (its mass lies in the dropped eigenvectors; the degree can even
#: be negative): it is left out of the node's eigenproblem and joins the side it is most linked
#: to. Dividing by its degree instead made it an outlier of the second eigenvector, so splits
#: peeled such atoms off one at a time at NCut 0 (decision 0008, fifth round)
WEAK_DEGREE = 1e-3
#: eigenvalues of a node's normalised truncated walk above 1 + SPURIOUS are truncation artefacts
SPURIOUS = 1e-6
#: the subspace iteration's products run in this precision (the Rayleigh-Ritz step in float64)
ITERATION_DTYPE = np.float32
#: eigenpairs a node's split computes first (the trivial one, an artefact or two, the split's)
LEADING = 6
#: the leading non-trivial eigenvectors whose best sweeps a split compares, by ratio: the second
#: minimises the relaxed NCut, not the ratio to the null, and a later one often cuts a region off
#: whose boundary is long for the walk but short for the null (decision 0008, seventh round)
CANDIDATES = 3
#: kernel entries the exact spatial null computes at once (8 MB of float64)
NULL_BLOCK = 1 << 20
#: nodes of at least this many atoms sum the spatial null on a grid of GRID_CELLS cells per null
#: spread, GRID_MARGIN spreads beyond the atoms (the blur reaches 4): its split's NCut within
#: ~1e-4 of the exact one, in O(n) instead of O(|A| |B|)
GRID_ATOMS = 1024
GRID_CELLS = 4
GRID_MARGIN = 4.5


def atom_cues(graph: AtomGraph, features: Features) -> np.ndarray:
    """(n, d) cues per atom: its mean Lab (scaled as the encoder's) and the texture of the
    token cells under it (the encoder's scaled cues, bilinear at the atom's centroid)."""
    from core.encoders.classic import COLOR_SCALE
    lab = graph.lab_sum / np.maximum(graph.sizes, 1)[:, None] / COLOR_SCALE
    cues = features.cues
    if cues is None:
        return lab
    texture = cues[..., 3:-2]
    centre = atom_centroids(graph)
    h, w = features.grid
    ys = np.clip(centre[:, 0] / graph.shape[0] * h - 0.5, 0, h - 1)
    xs = np.clip(centre[:, 1] / graph.shape[1] * w - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[:, None]
    tex = ((texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx) * (1 - fy)
           + (texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx) * fy)
    return np.concatenate([lab, tex], axis=1)


def atom_centroids(graph: AtomGraph) -> np.ndarray:
    """(n, 2) mean (row, col) of each atom's pixels."""
    rows, cols = np.indices(graph.shape)
    flat = graph.labels.ravel()
    return np.stack([np.bincount(flat, rows.ravel(), graph.n),
                     np.bincount(flat, cols.ravel(), graph.n)], axis=1) / np.maximum(graph.sizes, 1)[:, None]


def local_pairs(graph: AtomGraph, centroids: np.ndarray, radius: float) -> np.ndarray:
    """(m, 2) pairs i < j of atoms whose centroids lie within `radius` pixels, and all
    adjacent atoms (a large atom keeps its neighbours)."""
    from scipy.spatial import cKDTree
    near = cKDTree(centroids).query_pairs(radius, output_type="ndarray").astype(np.int64)
    both = np.concatenate([near, graph.edges.astype(np.int64)])
    lo, hi = both.min(axis=1), both.max(axis=1)
    keys = np.unique(lo * graph.n + hi)
    return np.stack(np.divmod(keys, graph.n), axis=1)


def intervening_contour(boundary: np.ndarray, centroids: np.ndarray, pairs: np.ndarray,
                        spacing: float = 2.0) -> np.ndarray:
    """(m,) the strongest contour on the straight segment between each pair's centroids,
    sampled every `spacing` pixels (Leung & Malik 1998; Fowlkes, Martin & Malik, CVPR 2003);
    the contour map is smoothed at >= 0.7 px (core.atoms.SCALES), so its ridges are >= 2 px wide."""
    a, b = centroids[pairs[:, 0]], centroids[pairs[:, 1]]
    length = np.sqrt(((a - b) ** 2).sum(axis=1))
    samples = max(2, int(math.ceil(length.max(initial=0.0) / spacing)) + 1)
    strongest = np.zeros(len(pairs), dtype=np.float32)
    limit = np.array(boundary.shape) - 1
    for t in np.linspace(0.0, 1.0, samples):
        point = np.clip(np.rint(a + t * (b - a)), 0, limit).astype(np.int64)
        np.maximum(strongest, boundary[point[:, 0], point[:, 1]], out=strongest)
    return strongest


def atom_affinity(graph: AtomGraph, cues: np.ndarray, cell: float) -> sp.csr_matrix:
    """Sparse symmetric W over atoms: pairs within RADIUS token cells (`cell` pixels) weigh
    their areas times a Gaussian of their distance (KERNEL cells), of their cue difference, and
    exp(-contour / BOUNDARY_SCALE) of the strongest contour between their centroids; the
    diagonal repeats each atom's other weights (a lazy walk)."""
    centroids = atom_centroids(graph)
    pairs = local_pairs(graph, centroids, RADIUS * cell)
    i, j = pairs[:, 0], pairs[:, 1]
    diff = ((cues[i] - cues[j]) ** 2).sum(axis=1)
    d2 = ((centroids[i] - centroids[j]) ** 2).sum(axis=1)
    contour = intervening_contour(graph.boundary, centroids, pairs)
    area = graph.sizes / graph.sizes.mean()
    content = np.exp(-CUE_WEIGHT * diff - contour / BOUNDARY_SCALE)
    weight = area[i] * area[j] * np.exp(-d2 / (2 * (KERNEL * cell) ** 2)) * (FLOOR + (1 - FLOOR) * content)
    return lazy_graph(graph.n, i, j, weight)


def lazy_graph(n: int, i: np.ndarray, j: np.ndarray, weight: np.ndarray) -> sp.csr_matrix:
    """The symmetric (n, n) graph of edges (i, j, weight) with self-loops equal to each node's
    other weights, so that its walk's eigenvalues lie in [0, 1]."""
    inner = np.bincount(i, weight, n) + np.bincount(j, weight, n)
    rows = np.concatenate([i, j, np.arange(n)])
    cols = np.concatenate([j, i, np.arange(n)])
    return sp.csr_matrix((np.concatenate([weight, weight, inner]), (rows, cols)), shape=(n, n))


class LowRankWalk:
    """The k-step walk affinity W_k ~ F F^T of a sparse graph, and its spatial null."""

    def __init__(self, w: sp.csr_matrix, centroids: np.ndarray, areas: np.ndarray,
                 long_side: float, n_eigen: int = 0, steps: int = 0) -> None:
        self.w, self.centroids = w, centroids
        degree = np.asarray(w.sum(axis=1)).ravel()
        self.variance = step_variance(w, degree, centroids)
        self.steps = steps or max(2, 2 * round((SPREAD * long_side) ** 2 / self.variance / 2))
        values, vectors = dominant_eigenpairs(w, degree, n_eigen or N_EIGEN, self.steps // 2)
        decay = np.clip(values, 0.0, 1.0) ** (self.steps / 2)
        self.f = (np.sqrt(degree / degree.sum())[:, None] * vectors) * decay[None, :]
        self.null = SpatialNull(centroids, areas, math.sqrt(self.steps * self.variance))

    def split(self, ids: np.ndarray) -> tuple[np.ndarray, float]:
        """Of the best NCut sweeps of W_k restricted to `ids` along its CANDIDATES leading
        eigenvectors, the one with the lowest ratio to the null's NCut, and that ratio. Nodes
        are split parent first (the null keeps each atom's degree in its node)."""
        f = self.f[ids]
        degree = f @ f.sum(axis=0)
        placed = degree > WEAK_DEGREE * max(float(np.median(degree)), 0.0)
        none = np.zeros(len(ids), dtype=bool), math.inf
        if placed.sum() < 2:
            return none
        f = f[placed]
        total = f.sum(axis=0)
        degree = np.maximum(f @ total, 1e-300)
        best: Optional[tuple[float, np.ndarray, NullCut]] = None
        for u in leading_vectors(f / np.sqrt(degree)[:, None], np.sqrt(degree), CANDIDATES):
            v = u / np.sqrt(degree)
            core, ncut = low_rank_bipartition(f, total, v * np.sign(v[np.argmax(np.abs(v))]))
            if not (core.any() and (~core).any() and math.isfinite(ncut)):
                continue
            side = np.zeros(len(ids), dtype=bool)
            side[placed] = core
            if not placed.all():
                side[~placed] = self._linked_side(ids, placed, side)
            null = self.null.cut(ids, side)
            ratio = ncut / max(null.ncut, 1e-12)
            if best is None or ratio < best[0]:
                best = (ratio, side, null)
        if best is None:
            return none
        ratio, side, null = best
        self.null.take(null)
        return side, ratio

    def _linked_side(self, ids: np.ndarray, placed: np.ndarray, side: np.ndarray) -> np.ndarray:
        """For the node's unplaced atoms: the side their links to placed atoms weigh most
        towards; with no such link, the side of the nearest placed atom."""
        links = self.w[ids[~placed]][:, ids]
        towards = np.asarray(links @ (placed & side).astype(float)).ravel()
        away = np.asarray(links @ (placed & ~side).astype(float)).ravel()
        out = towards > away
        alone = (towards == 0) & (away == 0)
        if alone.any():
            from scipy.spatial import cKDTree
            anchors = np.flatnonzero(placed)
            _, nearest = cKDTree(self.centroids[ids[anchors]]).query(self.centroids[ids[~placed][alone]])
            out[alone] = side[anchors[nearest]]
        return out


def leading_vectors(b: np.ndarray, trivial: np.ndarray, count: int) -> list[np.ndarray]:
    """B u for the `count` leading eigenvectors of the node's normalised W = B B^T other than
    `trivial` (sqrt of the degrees, eigenvalue 1), unnormalised, from the smaller of B^T B and
    B B^T; the second eigenvector first. Eigenvalues above 1 are skipped: the truncated walk has
    negative entries, and an atom of small degree then makes one, localised on that atom (it
    was taken for the second and peeled single atoms, or the trivial one was taken and the
    split failed)."""
    small = b.shape[0] <= b.shape[1]
    gram = b @ b.T if small else b.T @ b
    unit = trivial / max(float(np.linalg.norm(trivial)), 1e-300)
    found: list[np.ndarray] = []
    # the leading few suffice but for rare nodes; a node with at most LEADING atoms is solved once
    for top in dict.fromkeys((min(LEADING, len(gram)), len(gram))):
        values, vectors = scipy.linalg.eigh(gram, subset_by_index=[len(gram) - top, len(gram) - 1])
        for index in np.argsort(-values):
            if values[index] > 1 + SPURIOUS:
                continue
            w = vectors[:, index] if small else b @ vectors[:, index]
            if abs(float(unit @ w)) < 0.99 * max(float(np.linalg.norm(w)), 1e-300):
                found.append(w)
        if found:
            return found[:count]
    return found


class SpatialNull:
    """The content-free walk of decision 0302 on atoms: a Gaussian kernel of width `spread` on
    their centroids, weighted by their areas. A node of fewer than GRID_ATOMS atoms sums it
    exactly: each atom keeps its degree within its node, so a split sums only its |A| |B| cross
    pairs, in blocks of NULL_BLOCK entries. A larger node sums it on a grid (`GridSums`: its
    cut's relative error ~1e-4). Random Fourier features lost a split's cut to cancellation
    (vol - W(A, A), decision 0008); neither way here subtracts two large sums."""

    def __init__(self, centroids: np.ndarray, areas: np.ndarray, spread: float) -> None:
        self.points = np.asarray(centroids, dtype=np.float64) / spread
        self.areas = np.asarray(areas, dtype=np.float64)
        self.degree = np.zeros(len(self.areas))
        self.fresh = np.zeros(len(self.areas), dtype=bool)    # degree is the atom's within its node
        self.grid = GridSums(self.points) if len(self.points) >= GRID_ATOMS else None

    def cross(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum over cols of area x kernel, per row; the same per col, over rows)."""
        to_cols, to_rows = np.zeros(len(rows)), np.zeros(len(cols))
        step = max(1, NULL_BLOCK // max(len(cols), 1))
        target = self.points[cols]
        norms = (target ** 2).sum(axis=1)
        for start in range(0, len(rows), step):
            points = self.points[rows[start:start + step]]
            d2 = (points ** 2).sum(axis=1)[:, None] + norms[None, :] - 2 * points @ target.T
            kernel = np.exp(-0.5 * np.maximum(d2, 0.0))
            to_cols[start:start + step] = kernel @ self.areas[cols]
            to_rows += self.areas[rows[start:start + step]] @ kernel
        return to_cols, to_rows

    def cut(self, ids: np.ndarray, side: np.ndarray) -> "NullCut":
        """NCut of (side, ~side) of the node `ids` (the degrees stay those of the node)."""
        a, b = ids[side], ids[~side]
        if self.grid is not None and len(ids) >= GRID_ATOMS:
            from_a, from_b = self.grid.field(a, self.areas[a]), self.grid.field(b, self.areas[b])
            to_b = self.grid.sample(from_b, a)
            cut = float(self.areas[a] @ to_b)
            vol_a = cut + float(self.areas[a] @ self.grid.sample(from_a, a))
            vol_b = cut + float(self.areas[b] @ self.grid.sample(from_b, b))
            return NullCut(cut / max(vol_a, 1e-300) + cut / max(vol_b, 1e-300), a, b, None, None)
        if not self.fresh[ids].all():        # the node comes from a split summed on the grid
            self.degree[ids] = self.areas[ids] * self.cross(ids, ids)[0]
            self.fresh[ids] = True
        to_b, to_a = self.cross(a, b)
        cut = float(self.areas[a] @ to_b)
        ncut = cut / max(float(self.degree[a].sum()), 1e-300) + cut / max(float(self.degree[b].sum()), 1e-300)
        return NullCut(ncut, a, b, to_b, to_a)

    def take(self, cut: "NullCut") -> None:
        """The node is split by `cut`: its atoms' degrees become their sides'."""
        if cut.to_b is None or cut.to_a is None:
            self.fresh[cut.a] = self.fresh[cut.b] = False
            return
        self.degree[cut.a] -= self.areas[cut.a] * cut.to_b
        self.degree[cut.b] -= self.areas[cut.b] * cut.to_a


class GridSums:
    """Sums of area x exp(-|p - q|^2 / 2) over a set of points (in null-spread units), at other
    points, in O(n): the areas splatted bilinearly on a grid of GRID_CELLS cells per unit, blurred
    by a Gaussian and read back bilinearly (a grid Gauss transform). The two bilinear steps add a
    variance of 1/3 cell^2, which the blur leaves out."""

    def __init__(self, points: np.ndarray) -> None:
        self.origin = points.min(axis=0) - GRID_MARGIN
        extent = points.max(axis=0) + GRID_MARGIN - self.origin
        self.shape = tuple(int(v) for v in np.ceil(extent * GRID_CELLS) + 2)
        cell = (points - self.origin) * GRID_CELLS
        corner = np.floor(cell).astype(np.int64)
        share = cell - corner
        self.index = [np.ravel_multi_index((corner[:, 0] + dy, corner[:, 1] + dx), self.shape)
                      for dy in (0, 1) for dx in (0, 1)]
        self.weight = [(share[:, 0] if dy else 1 - share[:, 0]) * (share[:, 1] if dx else 1 - share[:, 1])
                       for dy in (0, 1) for dx in (0, 1)]
        self.sigma = math.sqrt(GRID_CELLS ** 2 - 1 / 3)

    def field(self, ids: np.ndarray, areas: np.ndarray) -> np.ndarray:
        size = self.shape[0] * self.shape[1]
        splat = sum(np.bincount(index[ids], weight[ids] * areas, minlength=size)
                    for index, weight in zip(self.index, self.weight))
        blurred = ndimage.gaussian_filter(splat.reshape(self.shape), self.sigma, mode="constant", truncate=4.0)
        return blurred.ravel() * (2 * math.pi * GRID_CELLS ** 2)

    def sample(self, field: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return sum(field[index[ids]] * weight[ids] for index, weight in zip(self.index, self.weight))


@dataclass
class NullCut:
    """A split's NCut under the spatial null, with the cross sums that splitting needs."""
    ncut: float
    a: np.ndarray
    b: np.ndarray
    to_b: Optional[np.ndarray]         # None: summed on the grid (the sides' degrees are not kept)
    to_a: Optional[np.ndarray]


def low_rank_ncut(f: np.ndarray, total: np.ndarray, side: np.ndarray) -> float:
    """NCut of (side, ~side) on W = F F^T (F's column sums `total`)."""
    inside = f[side].sum(axis=0)
    vol = float(inside @ total)
    cut = max(vol - float(inside @ inside), 0.0)
    return cut / max(vol, 1e-300) + cut / max(float(total @ total) - vol, 1e-300)


def step_variance(w: sp.csr_matrix, degree: np.ndarray, centroids: np.ndarray) -> float:
    """Per-axis variance of one step of the stationary walk on W (pixels^2)."""
    coo = w.tocoo()
    d2 = ((centroids[coo.row] - centroids[coo.col]) ** 2).sum(axis=1)
    return max(float((coo.data * d2).sum()) / float(degree.sum()) / 2, 1e-9)


def dominant_eigenpairs(w: sp.csr_matrix, degree: np.ndarray, k: int, power: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The k dominant eigenpairs of M = D^-1/2 W D^-1/2 by subspace iteration with `power`
    products (Halko, Martinsson & Tropp, SIAM Review 2011), then Rayleigh-Ritz: accurate where
    it matters, for the modes that survive `power` steps."""
    n = w.shape[0]
    k = min(k, n)
    inv = sp.diags(1 / np.sqrt(degree))
    m = (inv @ w @ inv).tocsr()
    fast = m.astype(ITERATION_DTYPE)
    block = np.random.default_rng(n).standard_normal((n, k)).astype(ITERATION_DTYPE)
    block[:, 0] = np.sqrt(degree)
    for step in range(max(power, 1)):
        block = fast @ block
        if step % 8 == 7:
            block = np.linalg.qr(block)[0]
    q = np.linalg.qr(block.astype(np.float64))[0]
    values, small = np.linalg.eigh(q.T @ (m @ q))
    return values[::-1], (q @ small)[:, ::-1]


def low_rank_bipartition(f: np.ndarray, total: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
    """As core.cut.ncut.best_bipartition, on W = F F^T: the sums of F's rows above each threshold."""
    n = len(v)
    thresholds = np.linspace(0.99 * v.min(), 0.99 * v.max(), N_THRESHOLDS)
    sizes = n - np.searchsorted(np.sort(v), thresholds, side="right")
    valid = (sizes > 0) & (sizes < n)
    if not valid.any():
        return v > thresholds[0], math.inf
    prefix = sums_above(f, v, thresholds)[valid]                # F^T 1_A for each candidate
    vol = prefix @ total
    vol_total = float(total @ total)
    cut = np.maximum(vol - (prefix ** 2).sum(axis=1), 0.0)
    values = np.full(len(thresholds), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        values[valid] = cut / vol + cut / (vol_total - vol)
    values[~np.isfinite(values)] = np.inf
    best = int(np.argmin(values))
    return v > thresholds[best], float(values[best])


def sums_above(f: np.ndarray, v: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per (ascending) threshold, the sum of F's rows whose v lies above it. A small node sums
    its rows in v order; a larger one sums them per stretch between two thresholds (one sparse
    product) and the stretches from the top: 10x faster at 3000 rows, slower under ~300."""
    n = len(v)
    if n <= 3 * len(thresholds):
        sizes = n - np.searchsorted(np.sort(v), thresholds, side="right")
        prefix = np.cumsum(f[np.argsort(-v, kind="stable")], axis=0)
        return np.where(sizes[:, None] > 0, prefix[np.maximum(sizes - 1, 0)], 0.0)
    below = np.searchsorted(thresholds, v, side="left")          # the thresholds under each row
    order = np.argsort(below, kind="stable")
    starts = np.zeros(len(thresholds) + 2, dtype=np.int64)
    np.cumsum(np.bincount(below, minlength=len(thresholds) + 1), out=starts[1:])
    stretch = sp.csr_matrix((np.ones(n), order, starts), shape=(len(thresholds) + 1, n)) @ f
    return np.cumsum(stretch[::-1], axis=0)[::-1][1:]


def atom_walk_graph(features: Features, settings: Settings) -> LowRankWalk:
    """The low-rank k-step walk over the features' contour atoms."""
    graph = features.atoms
    if graph is None:
        raise ValueError("the atom walk needs contour atoms: use the classic encoder")
    cell = max(graph.shape) / max(features.grid)
    w = atom_affinity(graph, atom_cues(graph, features), cell)
    return LowRankWalk(w, atom_centroids(graph), graph.sizes, float(max(graph.shape)),
                       steps=settings.walk_steps)


def atom_walk_hierarchy(features: Features, settings: Settings,
                        cancel: Optional[CancelToken] = None) -> CutNode:
    """Recursive 2-way NCut of the atoms' k-step walk, split while the ratio cost < tau_max."""
    if features.atoms is not None and features.atoms.n < 2:      # a one-pixel image: one region
        return CutNode(np.arange(features.atoms.n))
    walk = atom_walk_graph(features, settings)
    root = CutNode(np.arange(features.atoms.n))
    stack = [root]
    while stack:
        check_cancel(cancel)
        node = stack.pop()
        if len(node.tokens) <= 1:
            continue
        side, ratio = walk.split(node.tokens)
        node.cost = ratio_cost(ratio, ATOM_AUTO_RATIO)
        if node.cost < settings.tau_max:
            node.children = [CutNode(node.tokens[side]), CutNode(node.tokens[~side])]
            stack.extend(reversed(node.children))
    return root
