"""A plain, dense re-implementation of DiffCut's recursive NCut, for parity tests and benchmarks.

Written from the description in Couairon et al. (NeurIPS 2024, Supp. A) and the behaviour
of PaulCouairon/DiffCut's `recursive_normalized_cut.py`: float32 throughout, "painting" masks, sub-graphs
keeping only rows without exact zeros below the root, one dense eigendecomposition of the
symmetric normalized Laplacian per node, 100 quadratic forms, labels assembled by adding
`max_value * mask` in depth-first order. Deliberately slow and literal.
"""
import numpy as np


def reference_labels(tokens: np.ndarray, tau: float, alpha: float = 10.0) -> np.ndarray:
    """Token labels 0..K-1 as the reference computes them (tokens: (n, c))."""
    feats = tokens.astype(np.float32)
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), np.float32(1e-12))
    aff = feats @ feats.T
    aff = (aff - aff.min()) / (aff.max() - aff.min())
    aff = aff ** np.float32(alpha)
    n = len(feats)
    masks: list[np.ndarray] = []
    _recurse(aff, tau, np.zeros(n, np.float32), np.zeros(n, np.float32), masks, 0)
    # The reference adds `max_value * mask` into a float32 code map, which collides past
    # ~24 nested splits and overflows past ~128; the membership pattern is the same
    # partition without that numerical limit.
    membership = np.stack(masks, axis=1) if masks else np.zeros((n, 1), np.float32)
    return np.unique(membership, axis=0, return_inverse=True)[1].ravel()

def _recurse(aff, tau, painting, mask, masks, level):
    painting = ((painting + mask) > 0).astype(np.float32)
    aff = aff * (1 - np.outer(painting, painting))
    n = len(painting)
    keep = np.arange(n) if level == 0 else np.flatnonzero(~(aff == 0).any(axis=1))
    a = aff[np.ix_(keep, keep)]
    if a.shape[0] <= 1:
        return
    d = a.sum(axis=1)
    dis = np.diag(1 / d ** 0.5).astype(np.float32)
    lap = dis @ (np.diag(d) - a) @ dis
    vec = dis @ np.linalg.eigh(lap.astype(np.float64))[1][:, 1].astype(np.float32)
    vec = vec * np.sign(vec[np.argmax(np.abs(vec))])
    part, ncut = _bipartition(vec, a, d)
    full = np.zeros(n, np.float32)
    full[keep] = part
    if ncut < tau:
        masks.append(full)
        _recurse(aff, tau, painting, 1 - full, masks, level + 1)
        _recurse(aff, tau, painting, full, masks, level + 1)


def _bipartition(vec, a, d):
    thresholds = np.linspace(vec.min() * 0.99, vec.max() * 0.99, 100)
    lap = np.diag(d) - a
    values, parts = [], []
    for t in thresholds:
        part = (vec > t).astype(np.float64)
        x = 2 * part - 1
        k = (d * (x > 0)).sum() / d.sum()
        b = k / (1 - k)
        y = (1 + x) - b * (1 - x)
        values.append((y @ lap @ y) / (y @ (d * y)))
        parts.append(part)
    best = int(np.nanargmin(values))
    return parts[best], values[best]
