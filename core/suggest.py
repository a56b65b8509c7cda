"""Label suggestions: a classifier trained on every labelled region proposes a category for
every unlabelled one (docs/decisions/0304-label-suggestions.md).

Training examples are the nodes, at every granularity, of which at least PURE of the pixels
carry one category (a label set on an inner node counts for all the pixels it covers); they
are described by their pooled descriptors and the spread of the token features inside them
(core/descriptors.py). The classifier is multinomial logistic regression on standardised
descriptors; a suggestion's confidence is its probability, lowered when labelled examples of
another category lie nearly as close as those of the suggested one (the trust score of Jiang
et al., "To Trust Or Not To Trust A Classifier", NeurIPS 2018). Suggestions go only to nodes
with no labelled and no ignored pixel, and never name a category the annotator rejected on
that node.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Optional

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from core.descriptors import node_statistics
from core.tree import SegmentTree, Suggestion

PURE = 0.9                    # a training node: at least this share of its pixels in one category
L2 = 1e-2                     # ridge penalty per weight, on standardised descriptors (decision 0304)
MAX_ITERATIONS = 300
#: examples of a class are weighted by (largest class count / its count) ** CLASS_BALANCE, so
#: the few examples of small things (a sign, a cyclist) are not outvoted by the many nested
#: nodes of building and tree (decision 0304, fourth pass)
CLASS_BALANCE = 0.5
DEFAULT_MIN_CONFIDENCE = 0.50  # bulk accept: suggestions at or above this confidence (decision 0304)
#: full confidence needs the nearest labelled example of another category at least this many
#: times farther than the nearest of the suggested one (decision 0304)
TRUST_RATIO = 2.0
_UNLABELLED, _IGNORED = -1, -2


@dataclass
class Examples:
    """One image's training examples: descriptors (n, d) and categories (n,)."""

    descriptors: np.ndarray
    categories: np.ndarray
    source: str


def atom_categories(tree: SegmentTree) -> np.ndarray:
    """Per atom: its effective category, -1 when unlabelled, -2 when ignored."""
    out = np.full(tree.n_atoms, _UNLABELLED, dtype=np.int64)
    stack: list[tuple[int, Optional[int], bool]] = [(tree.root, None, False)]
    while stack:
        nid, category, ignored = stack.pop()
        node = tree.nodes[nid]
        category = node.category if node.category is not None else category
        ignored = ignored or node.ignored
        if node.children:
            stack.extend((child, category, ignored) for child in node.children)
        else:
            out[node.atoms] = _IGNORED if ignored else (_UNLABELLED if category is None else category)
    return out


def _node_majorities(tree: SegmentTree) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """(node ids, majority category, its share of the pixels, share labelled or ignored)."""
    labels = atom_categories(tree)
    area = np.bincount(tree.atom_map.ravel(), minlength=tree.n_atoms).astype(np.float64)
    ids = list(tree.nodes)
    majority = np.full(len(ids), _UNLABELLED, dtype=np.int64)
    share = np.zeros(len(ids))
    touched = np.zeros(len(ids))
    for row, nid in enumerate(ids):
        atoms = tree.nodes[nid].atoms
        total = area[atoms].sum()
        if total <= 0:
            continue
        own = labels[atoms]
        touched[row] = area[atoms][own != _UNLABELLED].sum() / total
        known = own >= 0
        if known.any():
            cats, inverse = np.unique(own[known], return_inverse=True)
            votes = np.bincount(inverse, weights=area[atoms][known])
            majority[row] = cats[votes.argmax()]
            share[row] = votes.max() / total
    return ids, majority, share, touched


def examples(tree: SegmentTree) -> Optional[Examples]:
    """The tree's labelled nodes as training examples (None when it has no descriptors)."""
    if tree.descriptors is None:
        return None
    ids, majority, share, _ = _node_majorities(tree)
    keep = share >= PURE
    chosen = [nid for nid, k in zip(ids, keep) if k]
    return Examples(node_statistics(tree, chosen), majority[keep], tree.descriptors.source)


def open_nodes(tree: SegmentTree) -> list[int]:
    """Nodes with no labelled and no ignored pixel: the ones that get suggestions."""
    ids, _, _, touched = _node_majorities(tree)
    return [nid for nid, t in zip(ids, touched) if t == 0]


class LinearClassifier:
    """Multinomial logistic regression on standardised descriptors (ridge penalty L2)."""

    def __init__(self, descriptors: np.ndarray, categories: np.ndarray) -> None:
        self.classes = np.unique(categories)
        self.mean = descriptors.mean(axis=0)
        self.scale = descriptors.std(axis=0) + 1e-6
        self._examples = self._standardised(descriptors)
        self._example_class = np.searchsorted(self.classes, categories)
        self.weights = _fit_softmax(self._design(descriptors), self._example_class, len(self.classes))

    def _standardised(self, descriptors: np.ndarray) -> np.ndarray:
        return (descriptors - self.mean) / self.scale

    def _design(self, descriptors: np.ndarray) -> np.ndarray:
        z = self._standardised(descriptors)
        return np.hstack([z, np.ones((len(z), 1))])

    def probabilities(self, descriptors: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities."""
        return _softmax(self._design(descriptors) @ self.weights)

    def trust(self, descriptors: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Per row: distance to the nearest training example of another class over the distance
        to the nearest of class index `chosen` (Jiang et al. 2018; inf when only that class
        is near, 0 when it has no example at all)."""
        z = self._standardised(descriptors)
        d2 = ((z ** 2).sum(1)[:, None] - 2 * z @ self._examples.T + (self._examples ** 2).sum(1)[None, :])
        d2 = np.maximum(d2, 0.0)
        same = self._example_class[None, :] == chosen[:, None]
        near_same = np.sqrt(np.where(same, d2, np.inf).min(axis=1))
        near_other = np.sqrt(np.where(same, np.inf, d2).min(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(near_same > 0, near_other / near_same, np.inf)

    def confidence(self, descriptors: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Per row: the probability of class index `chosen`, times the trust score over
        TRUST_RATIO where it is below that ratio."""
        p = self.probabilities(descriptors)[np.arange(len(chosen)), chosen]
        return p * np.minimum(1.0, self.trust(descriptors, chosen) / TRUST_RATIO)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _fit_softmax(z: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights (d+1, classes) minimising the class-balanced mean cross-entropy + L2 * |W|^2
    (bias unpenalised)."""
    n, d = z.shape
    onehot = np.eye(n_classes)[target]
    weight = class_weights(target, n_classes)[:, None]
    penalty = np.full((d, 1), L2)
    penalty[-1] = 0.0

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(d, n_classes)
        p = _softmax(z @ w)
        value = -(weight[:, 0] * np.log(p[np.arange(n), target] + 1e-12)).mean() + float((penalty * w ** 2).sum())
        grad = z.T @ (weight * (p - onehot)) / n + 2 * penalty * w
        return value, grad.ravel()

    # BLAS single-threaded: these small products ran 20x slower with threads competing for 2 cores
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(loss, np.zeros(d * n_classes), jac=True, method="L-BFGS-B",
                          options={"maxiter": MAX_ITERATIONS})
    return result.x.reshape(d, n_classes)


def class_weights(target: np.ndarray, n_classes: int) -> np.ndarray:
    """Per example: its class's balancing weight (CLASS_BALANCE), scaled to average 1."""
    counts = np.bincount(target, minlength=n_classes).astype(np.float64)
    per_class = (counts.max() / np.maximum(counts, 1.0)) ** CLASS_BALANCE
    weights = per_class[target]
    return weights / weights.mean()


class Suggester:
    """The project's training examples by image (recomputed only for trees that changed) and
    the classifier trained on them; `refresh` after a label is one tree's examples, one fit and
    the suggestions of the trees asked for."""

    def __init__(self) -> None:
        self._examples: dict[Hashable, tuple[tuple[int, int], Optional[Examples]]] = {}
        self.model: Optional[LinearClassifier] = None
        self.source: Optional[str] = None

    def update(self, key: Hashable, tree: SegmentTree) -> None:
        """Take in an image's labels (cheap when its tree has not changed since)."""
        stamp = (id(tree), tree.version)
        if key not in self._examples or self._examples[key][0] != stamp:
            self._examples[key] = (stamp, examples(tree))

    def keep_only(self, keys: set) -> None:
        """Forget the examples of images not in `keys` (closed, or left the project)."""
        self._examples = {k: v for k, v in self._examples.items() if k in keys}

    def add_examples(self, key: Hashable, found: Optional[Examples]) -> None:
        """Take in examples computed elsewhere (a pass over a project that does not keep trees)."""
        self._examples[key] = ((0, -1), found)

    def fit(self) -> bool:
        """Train on every image's examples of the most common descriptor source; False when
        fewer than two categories are labelled (nothing to tell apart)."""
        found = [e for _, e in self._examples.values() if e is not None and len(e.categories)]
        sources = [e.source for e in found]
        self.source = max(set(sources), key=sources.count) if sources else None
        found = [e for e in found if e.source == self.source]
        categories = np.concatenate([e.categories for e in found]) if found else np.zeros(0, np.int64)
        if len(np.unique(categories)) < 2:
            self.model = None
            return False
        self.model = LinearClassifier(np.concatenate([e.descriptors for e in found]), categories)
        return True

    def suggest(self, tree: SegmentTree) -> dict[int, Suggestion]:
        """Replace the tree's suggestions with the model's for its open nodes (none without a
        model or with descriptors of another encoder) and return them."""
        tree.suggestions = {}
        if self.model is None or tree.descriptors is None or tree.descriptors.source != self.source:
            return tree.suggestions
        ids = open_nodes(tree)
        if not ids:
            return tree.suggestions
        described = node_statistics(tree, ids)
        probabilities = self.model.probabilities(described)
        classes = self.model.classes
        for row, nid in enumerate(ids):
            rejected = tree.nodes[nid].rejected
            if rejected:
                probabilities[row, np.isin(classes, rejected)] = -1.0
        best = probabilities.argmax(axis=1)
        possible = probabilities[np.arange(len(ids)), best] >= 0
        confidence = self.model.confidence(described[possible], best[possible])
        for nid, category, value in zip(np.asarray(ids)[possible], best[possible], confidence):
            tree.suggestions[int(nid)] = Suggestion(int(classes[category]), float(value))
        return tree.suggestions


def confident_frontier(tree: SegmentTree, min_confidence: float) -> list[int]:
    """Shown regions whose live suggestion reaches `min_confidence` (what bulk accept takes)."""
    out = []
    for nid in tree.frontier():
        suggestion = tree.live_suggestion(nid)
        if suggestion is not None and suggestion.confidence >= min_confidence:
            out.append(nid)
    return out

