"""The segment tree: an editable hierarchy of regions over pixel atoms.

Pixels are grouped into atoms (the finest regions, `atom_map`); every node owns a set of
atoms, and an internal node owns exactly the union of its children's atoms. The frontier
(the nodes shown as segments) is every node whose ancestors are all expanded while it is
collapsed or a leaf; it is always a partition of the atoms, hence of the pixels.

Every edit returns an `Edit` that can be undone and redone; an edit records the state of
each node it touched (and the atom-map pixels it changed) before and after.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple, Optional

import numpy as np
from scipy.ndimage import distance_transform_edt

from core.errors import CutTreeError

if TYPE_CHECKING:
    from core.descriptors import DescriptorGrid

#: pixels to paint or erase: a boolean mask of the tree's shape, or flat indices into it.
Pixels = np.ndarray

#: cutter(mask) -> labels (0..k-1, k >= 2) for the True pixels of `mask` in row-major
#: order, or None when the region cannot be cut further.
Cutter = Callable[[np.ndarray], Optional[np.ndarray]]

ATOM_LOG_LENGTH = 16      # atom-map changes kept for caches that follow them (atom_pixels_changed_since)

#: `Node.category` of a region set explicitly unlabelled inside a labelled one (COCO ids start
#: at 1): it stops the inheritance, and `effective_category` reports None.
UNLABELLED = 0


class TreeEditError(CutTreeError):
    """An edit was asked that the tree cannot do (the message says why)."""


def node_color(node_id: int) -> tuple[int, int, int]:
    """A distinct, stable colour per node id (golden-ratio hue steps)."""
    hue = (node_id * 0.618033988749895) % 1.0
    sat = 0.65 + 0.25 * ((node_id * 7) % 3) / 2
    r, g, b = colorsys.hsv_to_rgb(hue, sat, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _frozen(atoms: Iterable[int]) -> np.ndarray:
    arr = np.unique(np.asarray(list(atoms) if not isinstance(atoms, np.ndarray) else atoms,
                               dtype=np.int32))
    arr.flags.writeable = False
    return arr


@dataclass
class Node:
    """One region of the tree. `category=None` means inherited from the parent, UNLABELLED
    means explicitly none."""

    id: int
    parent: Optional[int]
    children: list[int]
    atoms: np.ndarray
    cost: float = math.inf
    expanded: bool = False
    category: Optional[int] = None
    name: str = ""
    color: tuple[int, int, int] = (128, 128, 128)
    visible: bool = True
    ignored: bool = False
    rejected: tuple[int, ...] = ()     # categories the annotator rejected as suggestions here

    def copy(self) -> "Node":
        """A copy with its own children list (atoms are read-only and shared); cheap, since
        every edit copies each node it touches twice."""
        node = object.__new__(Node)
        node.__dict__.update(self.__dict__)
        node.children = list(self.children)
        return node


class Suggestion(NamedTuple):
    """A proposed category for an unlabelled node and the classifier's confidence (0..1)."""

    category: int
    confidence: float


@dataclass
class Edit:
    """An undo record: node states before/after (None = absent) and atom-map pixel changes."""

    kind: str
    before: dict[int, Optional[Node]] = field(default_factory=dict)
    after: dict[int, Optional[Node]] = field(default_factory=dict)
    pixels: Optional[np.ndarray] = None        # flat indices into atom_map
    atoms_before: Optional[np.ndarray] = None
    atoms_after: Optional[np.ndarray] = None
    next_id: tuple[int, int] = (0, 0)          # (before, after)
    n_atoms: tuple[int, int] = (0, 0)
    granularity: Optional[tuple[Optional[float], Optional[float]]] = None   # the image's τ (before, after)


class SegmentTree:
    """Nodes over pixel atoms, with a frontier and reversible edit operations."""

    def __init__(self, atom_map: np.ndarray, nodes: dict[int, Node], root: int,
                 image_size: Optional[tuple[int, int]] = None) -> None:
        if atom_map.ndim != 2:
            raise ValueError(f"atom map must be 2-D, got shape {atom_map.shape}")
        self.atom_map = np.ascontiguousarray(atom_map, dtype=np.int32)
        self.nodes = nodes
        self.root = root
        self.image_size = tuple(image_size or atom_map.shape)
        self.n_atoms = int(self.atom_map.max()) + 1 if self.atom_map.size else 0
        self.next_id = max(nodes) + 1
        self.granularity: Optional[float] = None   # the τ the whole tree was last pruned at
        self._atom_area = np.bincount(self.atom_map.ravel(), minlength=self.n_atoms)
        self._rec: Optional[Edit] = None
        self._frontier: Optional[list[int]] = None
        self.version = 0
        self.atom_version = 0      # changes whenever the atom map does (for caches of atom geometry)
        self._atom_log: list[tuple[int, np.ndarray]] = []     # the last changes: (version after, pixels)
        self.descriptors: Optional["DescriptorGrid"] = None   # region descriptors (core/descriptors.py)
        self.suggestions: dict[int, Suggestion] = {}          # node id -> the classifier's proposal

    # ----------------------------------------------------------------- building
    @classmethod
    def from_nested(cls, atom_map: np.ndarray, nested: "NestedNode",
                    image_size: Optional[tuple[int, int]] = None) -> "SegmentTree":
        """Build from (atoms, cost, children) tuples; leaves must list their atoms."""
        nodes: dict[int, Node] = {}

        def build(item: NestedNode, parent: Optional[int]) -> Node:
            atoms, cost, children = item
            nid = len(nodes)
            node = Node(nid, parent, [], _frozen(atoms), cost=cost, color=node_color(nid))
            nodes[nid] = node
            if children:
                kids = [build(child, nid) for child in children]
                node.children = [k.id for k in kids]
                node.atoms = _frozen(np.concatenate([k.atoms for k in kids]))
            return node

        build(nested, None)
        return cls(atom_map, nodes, 0, image_size)

    @classmethod
    def flat(cls, label_map: np.ndarray, image_size: Optional[tuple[int, int]] = None) -> "SegmentTree":
        """A root over one child per label (labels 0..K-1), the root expanded."""
        k = int(label_map.max()) + 1
        if k == 1:
            return cls.from_nested(label_map, ([0], math.inf, []), image_size)
        tree = cls.from_nested(label_map, ([], 0.0, [([i], math.inf, []) for i in range(k)]),
                               image_size)
        tree.nodes[tree.root].expanded = True
        return tree

    def reading_copy(self) -> "SegmentTree":
        """A copy another thread may read while this tree is edited (node states, atom areas, no
        suggestions; descriptors shared). It shares the atom map: edits write a new one
        (`_write_atoms`), so a copy costs no image-sized memory."""
        copy = object.__new__(SegmentTree)
        copy.__dict__.update(self.__dict__)
        copy.nodes = {nid: node.copy() for nid, node in self.nodes.items()}
        copy._atom_area = self._atom_area.copy()
        copy._rec, copy._frontier, copy._atom_log = None, None, []
        copy.suggestions = {}
        return copy

    # ----------------------------------------------------------------- queries
    @property
    def shape(self) -> tuple[int, int]:
        return self.atom_map.shape  # type: ignore[return-value]

    def children(self, node_id: int) -> list[int]:
        return self.nodes[node_id].children

    def ancestors(self, node_id: int) -> list[int]:
        """Parent, grandparent, ... up to the root."""
        out = []
        parent = self.nodes[node_id].parent
        while parent is not None:
            out.append(parent)
            parent = self.nodes[parent].parent
        return out

    def descendants(self, node_id: int) -> list[int]:
        out, stack = [], list(self.nodes[node_id].children)
        while stack:
            nid = stack.pop()
            out.append(nid)
            stack.extend(self.nodes[nid].children)
        return out

    def depth(self, node_id: int) -> int:
        return len(self.ancestors(node_id))

    def frontier(self) -> list[int]:
        """Node ids shown as segments, in depth-first order (cached until the next edit)."""
        if self._frontier is None:
            out, stack = [], [self.root]
            while stack:
                node = self.nodes[stack.pop()]
                if node.expanded and node.children:
                    stack.extend(reversed(node.children))
                else:
                    out.append(node.id)
            self._frontier = out
        return list(self._frontier)

    def is_frontier(self, node_id: int) -> bool:
        node = self.nodes[node_id]
        if node.expanded and node.children:
            return False
        return all(self.nodes[a].expanded for a in self.ancestors(node_id))

    def effective_category(self, node_id: int) -> Optional[int]:
        """The node's category, or the nearest ancestor's when it has none."""
        nid: Optional[int] = node_id
        while nid is not None:
            node = self.nodes[nid]
            if node.category is not None:
                return None if node.category == UNLABELLED else node.category
            nid = node.parent
        return None

    def holds_marks(self) -> bool:
        """Whether any node carries an annotator's mark: a label, an ignore mark or a rejection."""
        return any(n.category is not None or n.ignored or n.rejected for n in self.nodes.values())

    def area(self, node_id: int) -> int:
        return int(self._atom_area[self.nodes[node_id].atoms].sum())

    def atom_lut(self, node_ids: Iterable[int], fill: int = -1) -> np.ndarray:
        """Per-atom value: the position of the node (in `node_ids`) that owns the atom."""
        lut = np.full(self.n_atoms, fill, dtype=np.int32)
        for index, nid in enumerate(node_ids):
            lut[self.nodes[nid].atoms] = index
        return lut

    def frontier_labels(self) -> tuple[np.ndarray, list[int]]:
        """(label map of frontier indices, frontier node ids)."""
        front = self.frontier()
        return self.atom_lut(front)[self.atom_map], front

    def mask(self, node_id: int) -> np.ndarray:
        lut = np.zeros(self.n_atoms, dtype=bool)
        lut[self.nodes[node_id].atoms] = True
        return lut[self.atom_map]

    def node_at(self, row: int, col: int) -> int:
        """The frontier node under a pixel of the atom map."""
        atom = int(self.atom_map[row, col])
        for nid in self.frontier():
            atoms = self.nodes[nid].atoms
            i = np.searchsorted(atoms, atom)
            if i < len(atoms) and atoms[i] == atom:
                return nid
        raise AssertionError(f"atom {atom} is on no frontier node")

    def lowest_common_ancestor(self, node_ids: Iterable[int]) -> int:
        paths = [[nid] + self.ancestors(nid) for nid in node_ids]
        common = set(paths[0]).intersection(*map(set, paths[1:]))
        return next(nid for nid in paths[0] if nid in common)

    def check_invariants(self) -> None:
        """Raise AssertionError when nesting or partition is broken (used by tests)."""
        for node in self.nodes.values():
            for child in node.children:
                assert self.nodes[child].parent == node.id, f"child {child} of {node.id} has another parent"
            if node.children:
                parts = np.concatenate([self.nodes[c].atoms for c in node.children])
                assert len(parts) == len(np.unique(parts)), f"children of {node.id} overlap"
                assert np.array_equal(np.sort(parts), node.atoms), f"node {node.id} is not the union of its children"
        assert self.nodes[self.root].parent is None
        assert np.array_equal(self._atom_area, np.bincount(self.atom_map.ravel(), minlength=self.n_atoms)), \
            "atom areas are out of date"
        used = np.unique(self.atom_map)
        root_atoms = self.nodes[self.root].atoms
        assert np.isin(used, root_atoms).all(), "some pixels belong to no node"
        covered = np.concatenate([self.nodes[n].atoms for n in self.frontier()])
        assert len(covered) == len(np.unique(covered)), "frontier segments overlap"
        assert np.array_equal(np.sort(covered), root_atoms), "frontier does not cover the image"

    # ----------------------------------------------------------------- recording
    def _begin(self, kind: str) -> None:
        self._rec = Edit(kind, next_id=(self.next_id, self.next_id),
                         n_atoms=(self.n_atoms, self.n_atoms))

    def _touch(self, node_id: int) -> Node:
        """Record the state of a node before its first change in this edit; return it."""
        assert self._rec is not None
        if node_id not in self._rec.before:
            node = self.nodes.get(node_id)
            self._rec.before[node_id] = node.copy() if node else None
        return self.nodes[node_id]

    def _new_node(self, parent: Optional[int], children: list[int], atoms: np.ndarray, **kw) -> Node:
        assert self._rec is not None
        nid = self.next_id
        self.next_id += 1
        self._rec.before[nid] = None
        node = Node(nid, parent, children, _frozen(atoms), color=node_color(nid), **kw)
        self.nodes[nid] = node
        return node

    def _delete(self, node_id: int) -> None:
        self._touch(node_id)
        del self.nodes[node_id]

    def _end(self) -> Optional[Edit]:
        rec, self._rec = self._rec, None
        assert rec is not None
        rec.after = {nid: (self.nodes[nid].copy() if nid in self.nodes else None) for nid in rec.before}
        rec.next_id = (rec.next_id[0], self.next_id)
        rec.n_atoms = (rec.n_atoms[0], self.n_atoms)
        changed = [nid for nid in rec.before if not _same(rec.before[nid], rec.after[nid])]
        if rec.granularity is not None and rec.granularity[0] == rec.granularity[1]:
            rec.granularity = None
        if not changed and rec.pixels is None and rec.granularity is None:
            return None
        rec.before = {nid: rec.before[nid] for nid in changed}
        rec.after = {nid: rec.after[nid] for nid in changed}
        self._changed()
        return rec

    def _changed(self) -> None:
        self._frontier = None
        self.version += 1

    def undo(self, edit: Edit) -> None:
        self._apply(edit.before, edit.atoms_before, edit, edit.next_id[0], edit.n_atoms[0], 0)

    def redo(self, edit: Edit) -> None:
        self._apply(edit.after, edit.atoms_after, edit, edit.next_id[1], edit.n_atoms[1], 1)

    def _apply(self, states: dict[int, Optional[Node]], atom_values: Optional[np.ndarray],
               edit: Edit, next_id: int, n_atoms: int, side: int) -> None:
        if edit.granularity is not None:
            self.granularity = edit.granularity[side]
        for nid, state in states.items():
            if state is None:
                self.nodes.pop(nid, None)
            else:
                self.nodes[nid] = state.copy()
        self.next_id = next_id
        if edit.pixels is not None and atom_values is not None:
            old = self._write_atoms(edit.pixels, atom_values)
            self.n_atoms = n_atoms
            self._atoms_changed(edit.pixels, old, atom_values)
        self._changed()

    def _write_atoms(self, pixels: np.ndarray, atoms: np.ndarray) -> np.ndarray:
        """Give flat `pixels` these atoms in a new atom map; returns the atoms they had. The
        array handed out before is never written, so reading copies may share it."""
        flat = self.atom_map.ravel()
        before = flat[pixels]
        changed = flat.copy()
        changed[pixels] = atoms
        self.atom_map = changed.reshape(self.atom_map.shape)
        return before

    def _atoms_changed(self, pixels: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
        """`pixels` moved from atoms `before` to atoms `after` (one entry per pixel): update the
        atom areas by what moved (not a recount of the image), the version and its log."""
        n = self.n_atoms
        area = np.zeros(n, dtype=np.int64)
        kept = min(n, len(self._atom_area))
        area[:kept] = self._atom_area[:kept]
        area += np.bincount(after, minlength=n)[:n]
        area -= np.bincount(before, minlength=n)[:n]     # atoms past n were removed (an undo): dropped
        self._atom_area = area
        self.atom_version += 1
        self._atom_log = self._atom_log[-(ATOM_LOG_LENGTH - 1):] + [(self.atom_version, pixels)]

    def atom_pixels_changed_since(self, version: int) -> Optional[np.ndarray]:
        """Flat indices (unsorted, maybe repeated) of every pixel whose atom may have changed
        since `version` of the atom map; None when the log no longer reaches back that far."""
        if version == self.atom_version:
            return np.zeros(0, dtype=np.int64)
        newer = [pixels for after, pixels in self._atom_log if after > version]
        if len(newer) != self.atom_version - version:
            return None
        return np.concatenate(newer)

    # ----------------------------------------------------------------- edits
    def set_granularity(self, granularity: float, node_id: Optional[int] = None) -> Optional[Edit]:
        """Expand every node of the subtree whose split cost is below `granularity`; over the
        whole tree (no `node_id`) the tree remembers it (`self.granularity`, undone with the edit).
        A node above a region the annotator labelled or ignored stays expanded: a coarser
        granularity never folds such a region into an unlabelled one (its label would vanish
        from the canvas and the exports)."""
        self._begin("granularity")
        if node_id is None:
            assert self._rec is not None
            self._rec.granularity = (self.granularity, granularity)
            self.granularity = granularity
        top = self.root if node_id is None else node_id
        keep_open = self._above_marked_segments()
        for nid in [top] + self.descendants(top):
            node = self.nodes[nid]
            want = bool(node.children) and (node.cost < granularity or nid in keep_open)
            if node.expanded != want:
                self._touch(nid).expanded = want
        return self._end()

    def _above_marked_segments(self) -> set[int]:
        """The strict ancestors of the regions on or above the frontier that carry a label or
        an ignore mark (those whose mark decides what some pixels are)."""
        out: set[int] = set()
        stack = [self.root]
        while stack:
            node = self.nodes[stack.pop()]
            if node.category is not None or node.ignored:
                out.update(self.ancestors(node.id))
            if node.expanded and node.children:
                stack.extend(node.children)
        return out

    def split(self, node_id: int, cutter: Optional[Cutter] = None) -> Edit:
        """Show a segment's children; a leaf is cut anew by `cutter` (new atoms)."""
        node = self.nodes[node_id]
        self._begin("split")
        if node.children:
            if node.expanded and all(self.nodes[a].expanded for a in self.ancestors(node_id)):
                self._rec = None
                raise TreeEditError("this region is already split")
            for nid in [node_id] + self.ancestors(node_id):
                if not self.nodes[nid].expanded:
                    self._touch(nid).expanded = True
        else:
            self._cut_leaf(node_id, cutter)
        edit = self._end()
        assert edit is not None
        return edit

    def _cut_leaf(self, node_id: int, cutter: Optional[Cutter]) -> None:
        mask = self.mask(node_id)
        labels = cutter(mask) if cutter is not None else None
        if labels is None or len(np.unique(labels)) < 2:
            self._rec = None
            raise TreeEditError("this region cannot be cut any further")
        labels = np.asarray(labels)
        pixels = np.flatnonzero(mask)
        _, labels = np.unique(labels, return_inverse=True)
        new_atoms = self.n_atoms + labels
        assert self._rec is not None
        self._rec.pixels = pixels
        self._rec.atoms_after = new_atoms.astype(np.int32)
        self._rec.atoms_before = self._write_atoms(pixels, self._rec.atoms_after)
        k = int(labels.max()) + 1
        self.n_atoms += k
        self._atoms_changed(self._rec.pixels, self._rec.atoms_before, self._rec.atoms_after)
        created = np.arange(self.n_atoms - k, self.n_atoms)
        old = self.nodes[node_id].atoms
        for nid in [node_id] + self.ancestors(node_id):
            target = self._touch(nid)
            target.atoms = _frozen(np.concatenate([np.setdiff1d(target.atoms, old), created]))
        node = self._touch(node_id)
        node.children = [self._new_node(node_id, [], [a]).id for a in created]
        node.expanded = True
        node.cost = -math.inf  # a cut asked by the user stays shown at every granularity

    def merge(self, node_ids: Iterable[int]) -> Edit:
        """Merge regions: all children of one parent collapse it; others form a new group."""
        ids = list(dict.fromkeys(node_ids))
        if len(ids) < 2:
            raise TreeEditError("select at least two regions to merge")
        for nid in ids:
            if nid not in self.nodes:
                raise TreeEditError(f"region {nid} does not exist")
            if set(self.ancestors(nid)) & set(ids):
                raise TreeEditError("cannot merge a region with a region that contains it")
        self._begin("merge")
        self._merge_into_one(ids, self._merged_category(ids))
        edit = self._end()
        assert edit is not None
        return edit

    def _merge_into_one(self, ids: list[int], category: Optional[int]) -> None:
        """Inside an edit: the regions `ids` (none containing another) become one region,
        labelled `category` unless it inherits that already."""
        lca = self.lowest_common_ancestor(ids)
        atoms = np.concatenate([self.nodes[nid].atoms for nid in ids])
        if len(atoms) == len(self.nodes[lca].atoms):
            shown = self._touch(lca)  # the selection is all of their common ancestor
            shown.expanded = False
        else:
            shown = self._new_node(lca, [], atoms, cost=math.inf)
            self._touch(lca).children.append(shown.id)
            self._move(ids, shown.id)
            shown.ignored = all(self.nodes[nid].ignored for nid in ids)
        if category is not None and self.effective_category(shown.id) != category:
            self._touch(shown.id).category = category
        for anc in self.ancestors(shown.id):
            if not self.nodes[anc].expanded:
                self._touch(anc).expanded = True

    def _merged_category(self, ids: list[int]) -> Optional[int]:
        """The category a merged region takes: the labelled majority by area, if any."""
        votes: dict[int, int] = {}
        for nid in ids:
            cat = self.effective_category(nid)
            if cat is not None:
                votes[cat] = votes.get(cat, 0) + self.area(nid)
        return max(votes, key=lambda c: votes[c]) if votes else None

    def regroup(self, node_ids: Iterable[int], new_parent: int) -> Optional[Edit]:
        """Move regions under another node (drag in the layer panel); None when nothing moves.

        A region dropped onto a leaf turns the leaf into a group: the leaf's own pixels move
        to a new child, so that every node stays the union of its children.
        """
        ids = list(dict.fromkeys(node_ids))
        self._require(new_parent)
        for nid in ids:
            self._require(nid)
            if nid == new_parent or nid in self.ancestors(new_parent):
                raise TreeEditError("cannot move a region into itself or into one of its sub-regions")
            if nid == self.root:
                raise TreeEditError("cannot move the whole image")
            if set(self.ancestors(nid)) & set(ids):
                raise TreeEditError("cannot move a region together with a region that contains it")
        if all(self.nodes[nid].parent == new_parent for nid in ids):
            return None
        self._begin("regroup")
        target = self.nodes[new_parent]
        if not target.children:
            own = self._new_node(new_parent, [], target.atoms, name=target.name)
            self._touch(new_parent).children.append(own.id)
        self._move(ids, new_parent)
        return self._end()

    def _move(self, ids: list[int], new_parent: int) -> None:
        """Re-parent nodes, keeping every node the union of its children."""
        for nid in ids:
            old_parent = self.nodes[nid].parent
            assert old_parent is not None
            self._touch(old_parent).children.remove(nid)
            self._touch(nid).parent = new_parent
            self._drop_if_empty(old_parent)
        self._touch(new_parent).children.extend(n for n in ids if n not in self.nodes[new_parent].children)
        self._recompute_atoms_and_tidy()

    def _drop_if_empty(self, node_id: int) -> None:
        """Delete a node left without children, and its ancestors left empty by that."""
        node = self.nodes[node_id]
        while node.id != self.root and not node.children:
            parent = self._touch(node.parent)  # type: ignore[arg-type]
            parent.children.remove(node.id)
            self._delete(node.id)
            node = parent

    def _recompute_atoms_and_tidy(self) -> None:
        """Recompute atoms bottom-up; splice single-child nodes.

        Only the nodes this edit touched and their ancestors can have changed children, so only
        they are visited (deepest first): a merge or a regroup costs its paths, not the tree.
        """
        assert self._rec is not None
        affected: set[int] = set()
        for nid in self._rec.before:
            if nid in self.nodes:
                affected.update([nid, *self.ancestors(nid)])
        for nid in sorted(affected, key=self.depth, reverse=True):
            node = self.nodes.get(nid)
            if node is None or not node.children:
                continue
            if nid != self.root and len(node.children) == 1:
                self._splice(nid)
                continue
            atoms = _frozen(np.concatenate([self.nodes[c].atoms for c in node.children]))
            if not np.array_equal(atoms, node.atoms):
                self._touch(nid).atoms = atoms

    def _splice(self, node_id: int) -> None:
        """Replace a node that has a single child by that child."""
        node = self.nodes[node_id]
        child = self._touch(node.children[0])
        parent = self._touch(node.parent)  # type: ignore[arg-type]
        parent.children[parent.children.index(node_id)] = child.id
        child.parent = parent.id
        if child.category is None:
            child.category = node.category
        child.expanded = child.expanded and node.expanded    # what was shown stays shown
        self._delete(node_id)

    def paint(self, pixels: Pixels, node_id: int) -> Optional[Edit]:
        """Move pixels into a region (brush fixes the cut cannot make); None when none move.

        The moved pixels become one new atom of the region's largest leaf, so the nesting
        holds without touching any other region's sub-tree; pixels already inside are ignored.
        """
        self._require(node_id)
        flat = self._pixel_indices(pixels)
        flat = flat[~self._holds(node_id, flat)]
        if not flat.size:
            return None
        self._begin("paint")
        self._reassign([(flat, node_id)])
        return self._end()

    def erase(self, pixels: Pixels, node_id: int) -> Optional[Edit]:
        """Give the pixels of a region to the nearest region outside it (eraser).

        Each erased pixel goes to the frontier region of the nearest pixel outside `node_id`
        (one new atom per receiving region). A region erased entirely disappears.
        """
        self._require(node_id)
        flat = self._pixel_indices(pixels)
        flat = flat[self._holds(node_id, flat)]
        if not flat.size:
            return None
        nearest = _nearest_outside(self.mask(node_id), flat)
        if nearest is None:
            raise TreeEditError("there is no other region to give these pixels to")
        front = self.frontier()
        owner = np.asarray(front)[self.atom_lut(front)[self.atom_map.ravel()[nearest]]]
        self._begin("erase")
        self._reassign([(flat[owner == nid], int(nid)) for nid in np.unique(owner)])
        return self._end()

    def _require(self, node_id: int) -> None:
        if node_id not in self.nodes:
            raise TreeEditError(f"region {node_id} does not exist")

    def _pixel_indices(self, pixels: Pixels) -> np.ndarray:
        """Flat, unique pixel indices from a mask of the tree's shape or from flat indices."""
        pixels = np.asarray(pixels)
        if pixels.dtype == bool:
            if pixels.shape != self.shape:
                raise ValueError(f"mask shape {pixels.shape} is not the tree's {self.shape}")
            return np.flatnonzero(pixels)
        flat = np.unique(pixels.ravel().astype(np.int64))
        if flat.size and (flat[0] < 0 or flat[-1] >= self.atom_map.size):
            raise ValueError("pixel indices outside the image")
        return flat

    def _holds(self, node_id: int, flat: np.ndarray) -> np.ndarray:
        """Per pixel: does the node own it?"""
        return np.isin(self.atom_map.ravel()[flat], self.nodes[node_id].atoms)

    def _reassign(self, groups: list[tuple[np.ndarray, int]]) -> None:
        """Give each (pixels, node) group to its node as one new atom; tidy what was emptied.

        The new atom joins the node's largest leaf and that leaf's ancestors; atoms left with
        no pixel leave every node, and nodes left with no atom are dropped (their parents
        spliced as merge does). The pixel change is recorded in the edit, as a leaf cut's is.
        """
        assert self._rec is not None
        leaves = [self._largest_leaf(nid) for _, nid in groups]
        pixels = np.concatenate([p for p, _ in groups])
        first = self.n_atoms
        self._rec.pixels = pixels
        self._rec.atoms_after = np.repeat(np.arange(first, first + len(groups), dtype=np.int32),
                                          [len(p) for p, _ in groups])
        self._rec.atoms_before = self._write_atoms(pixels, self._rec.atoms_after)
        self.n_atoms += len(groups)
        self._atoms_changed(self._rec.pixels, self._rec.atoms_before, self._rec.atoms_after)
        for atom, leaf in enumerate(leaves, start=first):
            for nid in [leaf] + self.ancestors(leaf):
                node = self._touch(nid)
                node.atoms = _frozen(np.append(node.atoms, atom))
        touched = np.unique(self._rec.atoms_before)
        self._forget_atoms(touched[self._atom_area[touched] == 0])

    def _largest_leaf(self, node_id: int) -> int:
        """The node itself when it is a leaf, else its largest child's largest leaf."""
        node = self.nodes[node_id]
        while node.children:
            node = self.nodes[max(node.children, key=self.area)]
        return node.id

    def _forget_atoms(self, atoms: np.ndarray) -> None:
        """Remove pixel-less atoms from every node; drop nodes left without atoms."""
        emptied_leaves = []
        for atom in atoms:
            path = self.path_to_atom(int(atom))
            for nid in path:
                node = self._touch(nid)
                node.atoms = _frozen(node.atoms[node.atoms != atom])
            if not self.nodes[path[-1]].atoms.size:
                emptied_leaves.append(path[-1])
        for leaf in emptied_leaves:
            if leaf in self.nodes:
                self._drop_if_empty(leaf)
        if emptied_leaves:
            self._recompute_atoms_and_tidy()

    def path_to_atom(self, atom: int) -> list[int]:
        """The nodes that hold an atom, from the root down to its leaf."""
        path = [self.root]
        while True:
            children = self.nodes[path[-1]].children
            holder = next((c for c in children if _contains(self.nodes[c].atoms, atom)), None)
            if holder is None:
                return path
            path.append(holder)

    def label(self, node_ids: Iterable[int], category: Optional[int]) -> Optional[Edit]:
        """Give regions a category; their sub-regions follow. None unlabels: a region inside a
        labelled one becomes explicitly UNLABELLED (it would inherit the label otherwise)."""
        self._begin("label")
        for nid in node_ids:
            parent = self.nodes[nid].parent
            inherited = parent is not None and self.effective_category(parent) is not None
            self._touch(nid).category = UNLABELLED if category is None and inherited else category
            for desc in self.descendants(nid):
                if self.nodes[desc].category is not None:
                    self._touch(desc).category = None
        return self._end()

    def set_categories(self, categories: dict[int, int], kind: str = "label") -> Optional[Edit]:
        """Give each listed region its own category, in one edit (their sub-regions unchanged)."""
        self._begin(kind)
        for nid, category in categories.items():
            if self.nodes[nid].category != category:
                self._touch(nid).category = category
        return self._end()

    def forget_category(self, category: int) -> Optional[Edit]:
        """Unlabel every region labelled `category` (it was deleted); other labels stay as they are."""
        labelled = [node.id for node in self.nodes.values() if node.category == category]
        return self._set_field("label", labelled, "category", None)

    def set_ignored(self, node_ids: Iterable[int], ignored: bool = True) -> Optional[Edit]:
        """Mark regions as ignored (not exported)."""
        return self._set_field("ignore", node_ids, "ignored", ignored)

    def set_visible(self, node_ids: Iterable[int], visible: bool) -> Optional[Edit]:
        return self._set_field("visibility", node_ids, "visible", visible)

    def rename(self, node_id: int, name: str) -> Optional[Edit]:
        return self._set_field("rename", [node_id], "name", name)

    # ----------------------------------------------------------------- suggestions
    def live_suggestion(self, node_id: int) -> Optional[Suggestion]:
        """The node's suggestion, unless the annotator labelled, ignored or rejected it since."""
        suggestion = self.suggestions.get(node_id)
        if suggestion is None or node_id not in self.nodes or suggestion.category in self.nodes[node_id].rejected:
            return None
        nid: Optional[int] = node_id
        inherited = True                # no category met yet on the way up (one walk: drawn per shown region)
        while nid is not None:
            node = self.nodes[nid]
            if node.ignored or (inherited and node.category is not None and node.category != UNLABELLED):
                return None
            inherited = inherited and node.category is None
            nid = node.parent
        return suggestion

    def accept_suggestions(self, node_ids: Iterable[int], as_one: bool = False) -> Optional[Edit]:
        """Label each region with its live suggestion (one undoable edit). `as_one`: sibling
        regions suggested the same category become one region with that label (issue 14's
        merged proposals; all of a region's children collapse it)."""
        groups: dict[tuple[Optional[int], int], list[int]] = {}
        for nid in dict.fromkeys(node_ids):
            suggestion = self.live_suggestion(nid)
            if suggestion is not None:
                key = (self.nodes[nid].parent if as_one else nid, suggestion.category)
                groups.setdefault(key, []).append(nid)
        self._begin("accept")
        for (_, category), ids in groups.items():
            if len(ids) > 1:
                self._merge_into_one(ids, category)
            else:
                self._touch(ids[0]).category = category
        return self._end()

    def reject_suggestions(self, node_ids: Iterable[int]) -> Optional[Edit]:
        """Record that the annotator refused each region's suggestion (never proposed again there)."""
        self._begin("reject")
        for nid in node_ids:
            suggestion = self.live_suggestion(nid)
            if suggestion is not None:
                node = self._touch(nid)
                node.rejected = node.rejected + (suggestion.category,)
        return self._end()

    def _set_field(self, kind: str, node_ids: Iterable[int], name: str, value: object) -> Optional[Edit]:
        self._begin(kind)
        for nid in node_ids:
            if getattr(self.nodes[nid], name) != value:
                setattr(self._touch(nid), name, value)
        return self._end()


NestedNode = tuple  # (atoms: list[int], cost: float, children: list[NestedNode])


def _same(a: Optional[Node], b: Optional[Node]) -> bool:
    if a is None or b is None:
        return a is b
    return (a.parent == b.parent and a.children == b.children and np.array_equal(a.atoms, b.atoms)
            and a.cost == b.cost and a.expanded == b.expanded and a.category == b.category
            and a.name == b.name and a.color == b.color and a.visible == b.visible
            and a.ignored == b.ignored and a.rejected == b.rejected)


def _contains(sorted_atoms: np.ndarray, atom: int) -> bool:
    i = int(np.searchsorted(sorted_atoms, atom))
    return i < len(sorted_atoms) and sorted_atoms[i] == atom


def _nearest_outside(inside: np.ndarray, flat: np.ndarray, margin: int = 16) -> Optional[np.ndarray]:
    """For each pixel (flat index), the flat index of the nearest pixel where `inside` is False.

    Computed on a crop around the pixels, grown until it holds an outside pixel (the nearest
    pixel within the crop is the nearest overall whenever it is closer than the crop margin,
    which is what a brush stroke needs); None when every pixel of the image is inside.
    """
    h, w = inside.shape
    rows, cols = np.divmod(flat, w)
    while True:
        top, left = max(int(rows.min()) - margin, 0), max(int(cols.min()) - margin, 0)
        bottom, right = min(int(rows.max()) + margin + 1, h), min(int(cols.max()) + margin + 1, w)
        crop = inside[top:bottom, left:right]
        if not crop.all():
            break
        if (top, left, bottom, right) == (0, 0, h, w):
            return None
        margin *= 2
    _, (near_r, near_c) = distance_transform_edt(crop, return_indices=True)
    r, c = rows - top, cols - left
    return (near_r[r, c] + top) * w + near_c[r, c] + left


class History:
    """Linear undo/redo over a tree's edits (the GUI uses a QUndoStack instead)."""

    def __init__(self, tree: SegmentTree) -> None:
        self.tree = tree
        self.done: list[Edit] = []
        self.undone: list[Edit] = []

    def push(self, edit: Optional[Edit]) -> None:
        if edit is not None:
            self.done.append(edit)
            self.undone.clear()

    def undo(self) -> bool:
        if not self.done:
            return False
        edit = self.done.pop()
        self.tree.undo(edit)
        self.undone.append(edit)
        return True

    def redo(self) -> bool:
        if not self.undone:
            return False
        edit = self.undone.pop()
        self.tree.redo(edit)
        self.done.append(edit)
        return True
