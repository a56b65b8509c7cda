"""Recursive two-way Normalized Cut over a token affinity (DiffCut's clustering).

Follows Couairon et al., "Zero-Shot Image Segmentation via Recursive Normalized Cut on
Diffusion Features" (NeurIPS 2024, §3.2 and Supp. A; repository PaulCouairon/DiffCut) and
Shi & Malik, "Normalized Cuts and Image Segmentation" (TPAMI 2000). The partition at a
given (alpha, tau) equals the reference's, except for one reference bug we fix by default
(tokens with an underflowed affinity dropped from sub-problems, see `ncut_hierarchy`). Two
more things differ, neither changing the partition:

- the tree is computed once down to `tau_max`, keeping every split's NCut value as the
  node's cost, so the partition at any tau <= tau_max is a pruning (split iff cost < tau);
- the second generalized eigenvector comes from Lanczos on the deflated normalized
  affinity and the best threshold from prefix sums, instead of a dense `eigh` and 100
  quadratic forms (see docs/decisions/0001-ncut-parity-and-speed.md).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy.linalg import eigh
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from core.cut.hierarchy import CutNode
from core.jobs import CancelToken, check_cancel

N_THRESHOLDS = 100        # evenly spaced candidates, as the reference
DENSE_EIGH_BELOW = 160    # sub-graphs smaller than this use a dense eigensolver


def cosine_affinity(tokens: np.ndarray, alpha: float) -> np.ndarray:
    """DiffCut's affinity: cosine similarity, min-max normalised over the matrix, ^alpha.

    Computed in float32 like the reference, so that the same entries underflow to zero
    (which decides the zero-row quirk below). A constant image gives all ones.
    """
    feats = np.asarray(tokens, dtype=np.float32)
    norms = np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), np.float32(1e-12))
    feats = feats / norms
    sim = feats @ feats.T
    lo, hi = sim.min(), sim.max()
    if not hi - lo > 1e-6:
        return np.ones_like(sim)
    sim = (sim - lo) / (hi - lo)
    return sim ** np.float32(alpha)


def second_eigenvector(affinity: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """The second-smallest generalized eigenvector of (D - W) v = lambda D v, sign-fixed.

    Solved as the top eigenvector of D^-1/2 W D^-1/2 deflated by its known top eigenvector
    sqrt(d); the sign makes the largest-magnitude entry positive (as the reference).
    `tol` is Lanczos' relative accuracy: tight by default for parity with the reference's
    dense solver; methods without a reference may loosen it.
    """
    m = np.array(affinity, dtype=np.float64)
    n = m.shape[0]
    d = m.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(d)
    m *= inv_sqrt[:, None]
    m *= inv_sqrt[None, :]
    if n < DENSE_EIGH_BELOW:
        u = eigh(m, subset_by_index=[n - 2, n - 2])[1][:, 0]
    else:
        top = np.sqrt(d) / np.linalg.norm(np.sqrt(d))
        op = LinearOperator((n, n), dtype=np.float64, matvec=lambda x: m @ x - top * (top @ x))
        start = np.random.default_rng(n).standard_normal(n)
        try:
            u = eigsh(op, k=1, which="LA", v0=start, tol=tol, maxiter=20 * n)[1][:, 0]
        except ArpackNoConvergence:
            u = eigh(m, subset_by_index=[n - 2, n - 2])[1][:, 0]
    v = u * inv_sqrt
    return v * np.sign(v[np.argmax(np.abs(v))])


def best_bipartition(affinity: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
    """The split `v > t` with the smallest NCut over evenly spaced thresholds t.

    Candidates are linspace(0.99 min v, 0.99 max v, 100); ties go to the first. Each
    candidate keeps the top-m nodes of v for some m; with the nodes sorted by v, the block
    sums of the affinity between consecutive candidate sizes (one pass over the matrix)
    give assoc(S_m, S_m) and vol(S_m) for every candidate, hence cut/vol(A) + cut/vol(B).
    """
    n = len(v)
    thresholds = np.linspace(0.99 * v.min(), 0.99 * v.max(), N_THRESHOLDS)
    sizes = n - np.searchsorted(np.sort(v), thresholds, side="right")
    valid = (sizes > 0) & (sizes < n)
    inner = np.unique(sizes[valid])                            # sorted candidate sizes
    if not len(inner):
        return v > thresholds[0], math.inf
    order = np.argsort(-v, kind="stable")
    ws = np.asarray(affinity)[np.ix_(order, order)]
    starts = np.concatenate([[0], inner])
    rows = np.add.reduceat(ws, starts, axis=0, dtype=np.float64)
    blocks = np.add.reduceat(rows, starts, axis=1)             # (k+1, k+1) block sums
    assoc = np.cumsum(np.cumsum(blocks, axis=0), axis=1).diagonal()[:-1]
    vol = np.cumsum(blocks.sum(axis=1))[:-1]
    vol_total = blocks.sum()
    cut = vol - assoc
    values = np.full(len(sizes), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        values[valid] = (cut / vol + cut / (vol_total - vol))[np.searchsorted(inner, sizes[valid])]
    best = int(np.argmin(values))
    return v > thresholds[best], float(values[best])


def ncut_hierarchy(affinity: np.ndarray, tau_max: float, min_tokens: int = 0,
                   drop_zero_rows: bool = False, cancel: Optional[CancelToken] = None) -> CutNode:
    """Recursive 2-way NCut of the whole graph, split while the NCut value < tau_max.

    Each node's `cost` is the NCut of its best split (inf when it cannot be split); its
    children are [v > t side, the rest], the order the reference explores them.
    `drop_zero_rows` reproduces a reference bug, for parity checks: below the root, tokens
    whose affinity row holds an exact zero (the matrix minimum, or an entry that underflowed
    at ^alpha) are left out of every eigenproblem and stay on the "rest" side, which breaks
    well-separated regions (docs/decisions/0001-ncut-parity-and-speed.md).
    `min_tokens` > 0 stops at smaller nodes (off by default: the reference has no such rule).
    """
    n = affinity.shape[0]
    zero_row = (affinity == 0).any(axis=1) if drop_zero_rows else np.zeros(n, bool)
    root = CutNode(np.arange(n))
    stack = [(root, 0)]
    while stack:
        check_cancel(cancel)
        node, level = stack.pop()
        kept = node.tokens if level == 0 else node.tokens[~zero_row[node.tokens]]
        if len(kept) <= 1 or len(node.tokens) < min_tokens:
            continue
        sub = affinity[np.ix_(kept, kept)]
        side, cost = best_bipartition(sub, second_eigenvector(sub))
        node.cost = cost if math.isfinite(cost) else math.inf
        if node.cost < tau_max:
            one = kept[side]
            node.children = [CutNode(one), CutNode(np.setdiff1d(node.tokens, one))]
            stack.append((node.children[1], level + 1))
            stack.append((node.children[0], level + 1))
    return root


def diffcut_hierarchy(tokens: np.ndarray, alpha: float, tau_max: float, min_tokens: int = 0,
                      reference_zero_rows: bool = False,
                      cancel: Optional[CancelToken] = None) -> CutNode:
    """DiffCut on an (n, c) token matrix: cosine affinity ^ alpha, then recursive NCut."""
    return ncut_hierarchy(cosine_affinity(tokens, alpha), tau_max, min_tokens,
                          reference_zero_rows, cancel)
