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
  symmetric, and k = 1 gives back the plain NCut of W.
- Automatic stopping: a split's cost is its NCut divided by the NCut expected for a
  random split of the same sub-graph (1 - self-loop mass / volume, the configuration
  null of modularity, which makes the test "better than chance" scale-free). A split is
  kept iff that ratio < AUTO_RATIO. Costs are scaled so that this automatic threshold
  sits at the default granularity: cost = tau_ref * ratio / AUTO_RATIO.
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

DEFAULT_STEPS = 3
AUTO_RATIO = 0.5
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


def random_split_ncut(w: np.ndarray) -> float:
    """Expected NCut of a uniformly random bipartition of the graph: 1 - trace / volume."""
    return float(1.0 - np.trace(w) / w.sum())


def split_ratio(w: np.ndarray) -> tuple[np.ndarray, float]:
    """The best NCut split of `w` and its NCut relative to a random split's."""
    side, ncut = best_bipartition(w, second_eigenvector(w))
    null = random_split_ncut(w)
    return side, (ncut / null if null > 0 and math.isfinite(ncut) else math.inf)


def ratio_cost(ratio: float) -> float:
    """Granularity cost of a split: the automatic threshold maps to the reference granularity."""
    return REFERENCE_GRANULARITY * ratio / AUTO_RATIO


def walk_tree(w: np.ndarray, tau_max: float, min_tokens: int = 0,
              cancel: Optional[CancelToken] = None) -> CutNode:
    """Recursive 2-way NCut of `w`; nodes split while their ratio cost < tau_max."""
    root = CutNode(np.arange(w.shape[0]))
    stack = [root]
    while stack:
        check_cancel(cancel)
        node = stack.pop()
        if len(node.tokens) <= 1 or len(node.tokens) < min_tokens:
            continue
        side, ratio = split_ratio(w[np.ix_(node.tokens, node.tokens)])
        node.cost = ratio_cost(ratio)
        if node.cost < tau_max:
            node.children = [CutNode(node.tokens[side]), CutNode(node.tokens[~side])]
            stack.extend(reversed(node.children))
    return root


def walk_hierarchy(features: Features, settings: Settings,
                   cancel: Optional[CancelToken] = None) -> CutNode:
    """Random-walk NCut of the features' attention (or affinity), with automatic stopping."""
    p, pi = transition_matrix(features, settings.alpha)
    check_cancel(cancel)
    steps = int(getattr(settings, "walk_steps", DEFAULT_STEPS))
    w = walk_affinity(p, steps, pi)
    return walk_tree(w, settings.tau_max, settings.min_tokens, cancel)
