"""Random-walk normalized cut: recursive 2-way NCut on k-step transition probabilities.

After Ivanova, Aversa, Henderson and Williamson, "Unsupervised Segmentation by Diffusing,
Walking and Cutting" (arXiv 2412.04678, WACV 2026), which publishes no code or equations;
the construction below is standard spectral-clustering theory (Meila & Shi 2001; Chung 2005
for directed walks; Delvenne, Yaliraki & Barahona 2010 for Markov stability), chosen and
measured in docs/decisions/0302-walk-ncut.md:

- P is the self-attention read as a transition matrix (DiffSeg's multi-resolution
  aggregate, `core.cut.diffseg.aggregate_attention`); without attention (the classic
  encoder) it is the random walk D^-1 W on DiffCut's affinity W = cosine^alpha.
- k-step walks: W_k = sym(Pi P^k), Pi the stationary distribution. W_k[i, j] is the
  probability that the stationary walk is at i and, k steps later, at j; the NCut of a
  split on W_k is the chance that a k-step walk started in one side ends in the other,
  summed over both sides. For a reversible P (any symmetric W) Pi P^k is already
  symmetric, and k = 1 gives back the plain NCut of W. k is the user's
  (`walk_steps`), or by default the number of steps after which the walk's spatial spread
  reaches SPREAD of the long side: many steps for local affinities, one for attention
  that already spans whole objects.
- Automatic stopping: a split's cost is its NCut divided by the NCut of the same split
  under a null walk that keeps P's geometry but not its content (a Gaussian walk on token
  positions with P's mean squared step, for the same k steps). The ratio says how much
  harder the boundary is to cross than its length and the areas alone explain, so one
  threshold fits small and large regions and every k. A split is kept iff the ratio <
  AUTO_RATIO; costs are scaled so that this sits at the default granularity:
  cost = tau_ref * ratio / AUTO_RATIO up to it, and above it logarithmically, so that the
  granularity range (tau <= 1) reaches ratios up to DEEPEST_RATIO: the detail CamVid's
  small things need (docs/decisions/0007-walk-granularity-range.md).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, eigs

from core.cut.diffseg import aggregate_attention
from core.cut.hierarchy import CutNode
from core.cut.ncut import best_bipartition, cosine_affinity, second_eigenvector
from core.features import Features
from core.jobs import CancelToken, check_cancel
from core.settings import Settings

#: automatic k: walk until the per-axis spread is this fraction of the grid's long side
SPREAD = 0.1
MAX_STEPS = 20
AUTO_RATIO = 0.25
#: the ratio at granularity 1 (the finest the range reaches): four times AUTO_RATIO
DEEPEST_RATIO = 1.0
#: Lanczos accuracy: no reference to match, and 100 thresholds need far less than 1e-10
EIGEN_TOL = 1e-6
#: the granularity at which the automatic threshold sits (the default tau)
REFERENCE_GRANULARITY = Settings.tau


def transition_matrix(features: Features, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Row-stochastic (N, N) float64 P and its stationary distribution pi.

    P is the aggregated attention when there is any, else D^-1 W with W = cosine^alpha of
    the tokens, whose stationary distribution is known in closed form: degree / volume.
    """
    if features.attention:
        p = aggregate_attention(features.attention, features.grid).astype(np.float64)
        p /= p.sum(axis=1, keepdims=True)
        return p, stationary_distribution(p)
    w = cosine_affinity(features.flat(), alpha).astype(np.float64)
    degree = w.sum(axis=1)
    return w / degree[:, None], degree / degree.sum()


def stationary_distribution(p: np.ndarray) -> np.ndarray:
    """The left Perron vector pi = pi P of a row-stochastic matrix (ARPACK, dense fallback)."""
    n = p.shape[0]
    try:
        vec = eigs(p.T, k=1, which="LR", v0=np.full(n, 1.0 / n), tol=1e-12)[1][:, 0].real
        pi = np.abs(vec) / np.abs(vec).sum()
        if np.abs(pi @ p - pi).sum() < 1e-8:
            return pi
    except ArpackNoConvergence:
        pass
    system = p.T - np.eye(n)
    system[-1] = 1.0
    rhs = np.zeros(n)
    rhs[-1] = 1.0
    return np.linalg.solve(system, rhs)


def walk_affinity(p: np.ndarray, steps: int, pi: Optional[np.ndarray] = None) -> np.ndarray:
    """W_k = (Pi P^k + (Pi P^k)^T) / 2; its degrees are pi."""
    if steps < 1:
        raise ValueError(f"the number of walk steps must be at least 1, got {steps}")
    pi = stationary_distribution(p) if pi is None else pi
    pk = np.linalg.matrix_power(p.astype(np.float32), steps).astype(np.float64) if steps > 1 else p
    flow = pi[:, None] * pk
    return (flow + flow.T) / 2


def squared_distances(grid: tuple[int, int]) -> np.ndarray:
    """(N, N) float32 squared distances between token positions of the (h, w) grid."""
    rows, cols = np.divmod(np.arange(grid[0] * grid[1]), grid[1])
    return ((rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2).astype(np.float32)


def step_variance(p: np.ndarray, pi: np.ndarray, dist2: np.ndarray) -> float:
    """Per-axis variance of one step of the stationary walk, in tokens^2."""
    return max(float((pi[:, None] * p * dist2).sum()) / 2, 1e-6)


def automatic_steps(variance: float, grid: tuple[int, int]) -> int:
    """Steps for the walk to spread over SPREAD of the long side (per-axis std), 1..MAX_STEPS."""
    target = (SPREAD * max(grid)) ** 2
    return int(np.clip(round(target / variance), 1, MAX_STEPS))


def spatial_null(variance: float, dist2: np.ndarray, steps: int) -> np.ndarray:
    """The walk's geometry without its content: a Gaussian walk on token positions.

    Its per-axis step variance is P's (`step_variance`), so after `steps` steps its kernel
    is exp(-|x_i - x_j|^2 / (2 steps var)); returned as a float32 symmetric affinity.
    """
    return np.exp(dist2 / np.float32(-2 * steps * variance))


def partition_ncut(w: np.ndarray, side: np.ndarray) -> float:
    """NCut of the split (side, ~side) of the graph w: cut/vol(A) + cut/vol(B)."""
    cut = float(w[np.ix_(side, ~side)].sum())
    degree = w.sum(axis=1)
    return cut / float(degree[side].sum()) + cut / float(degree[~side].sum())


def split_ratio(w: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, float]:
    """The best NCut split of `w`, and its NCut relative to the same split's on the null graph."""
    side, ncut = best_bipartition(w, second_eigenvector(w, tol=EIGEN_TOL))
    if not (side.any() and (~side).any() and math.isfinite(ncut)):
        return side, math.inf
    return side, ncut / max(partition_ncut(null, side), 1e-12)


def ratio_cost(ratio: float, auto: float = AUTO_RATIO) -> float:
    """Granularity cost of a split: linear in the ratio up to the automatic threshold `auto`
    (which maps to the reference granularity), then in its logarithm, DEEPEST_RATIO mapping to 1."""
    x = ratio / auto
    if x <= 1:
        return REFERENCE_GRANULARITY * x
    return REFERENCE_GRANULARITY + (1 - REFERENCE_GRANULARITY) * math.log(x) / math.log(DEEPEST_RATIO / auto)


def walk_tree(w: np.ndarray, null: np.ndarray, tau_max: float, min_tokens: int = 0,
              cancel: Optional[CancelToken] = None) -> CutNode:
    """Recursive 2-way NCut of `w`; nodes split while their ratio cost < tau_max."""
    root = CutNode(np.arange(w.shape[0]))
    stack = [root]
    while stack:
        check_cancel(cancel)
        node = stack.pop()
        if len(node.tokens) <= 1 or len(node.tokens) < min_tokens:
            continue
        ids = np.ix_(node.tokens, node.tokens)
        side, ratio = split_ratio(w[ids], null[ids])
        node.cost = ratio_cost(ratio)
        if node.cost < tau_max:
            node.children = [CutNode(node.tokens[side]), CutNode(node.tokens[~side])]
            stack.extend(reversed(node.children))
    return root


def walk_hierarchy(features: Features, settings: Settings,
                   cancel: Optional[CancelToken] = None) -> CutNode:
    """Random-walk NCut of the features' attention (or affinity), with automatic stopping."""
    w, null = walk_graph(features, settings)
    check_cancel(cancel)
    return walk_tree(w, null, settings.tau_max, settings.min_tokens, cancel)


def walk_graph(features: Features, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """The k-step walk affinity W_k of the features and its spatial null graph."""
    p, pi = transition_matrix(features, settings.alpha)
    dist2 = squared_distances(features.grid)
    variance = step_variance(p, pi, dist2)
    steps = settings.walk_steps or automatic_steps(variance, features.grid)
    return walk_affinity(p, steps, pi), spatial_null(variance, dist2, steps)
