"""Carry an annotator's labels from an old cut tree of an image onto a new one (a re-cut).

Each segment shown by the new tree takes the label that covers most of its pixels in the old
tree (unlabelled counts as a label: a segment mostly unlabelled before stays unlabelled).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from core.tree import UNLABELLED, Edit, SegmentTree


def pixel_categories(tree: SegmentTree) -> np.ndarray:
    """Each pixel's effective category (UNLABELLED where it has none), at the atom map's size."""
    lut = np.full(tree.n_atoms, UNLABELLED, dtype=np.int64)
    for nid in tree.frontier():
        category = tree.effective_category(nid)
        if category is not None:
            lut[tree.nodes[nid].atoms] = category
    return lut[tree.atom_map]


def carry_labels(old: SegmentTree, new: SegmentTree) -> Optional[Edit]:
    """Label each frontier segment of `new` with the majority category of its pixels in `old`;
    one Edit on `new` (None when nothing was labelled)."""
    before = pixel_categories(old)
    if before.shape != new.atom_map.shape:      # another mask resolution: sample nearest pixels
        rows = np.arange(new.atom_map.shape[0]) * before.shape[0] // new.atom_map.shape[0]
        cols = np.arange(new.atom_map.shape[1]) * before.shape[1] // new.atom_map.shape[1]
        before = before[np.ix_(rows, cols)]
    codes, inverse = np.unique(before, return_inverse=True)
    k = len(codes)
    votes = np.bincount(new.atom_map.ravel() * k + inverse.ravel(), minlength=new.n_atoms * k)
    votes = votes.reshape(new.n_atoms, k)
    winners = {nid: int(codes[int(np.argmax(votes[new.nodes[nid].atoms].sum(axis=0)))]) for nid in new.frontier()}
    return new.set_categories({nid: c for nid, c in winners.items() if c != UNLABELLED}, "carry labels")
