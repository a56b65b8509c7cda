"""Segment tree: nesting and partition invariants under random edits, and undo/redo."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from core.tree import ATOM_LOG_LENGTH, History, SegmentTree, Suggestion, TreeEditError
from core.tree_file import decode_tree_file, tree_file_bytes


def random_tree(rng: np.random.Generator, n_atoms: int = 12, shape=(24, 32)) -> SegmentTree:
    """A random binary hierarchy over `n_atoms` atoms laid out as random blobs."""
    seeds = rng.integers(0, shape[0] * shape[1], n_atoms)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    d = (yy.ravel()[None] - (seeds // shape[1])[:, None]) ** 2 + (xx.ravel()[None] - (seeds % shape[1])[:, None]) ** 2
    atom_map = np.argmin(d, axis=0).reshape(shape)
    atom_map = np.unique(atom_map, return_inverse=True)[1].reshape(shape)
    atoms = list(range(int(atom_map.max()) + 1))

    def build(group):
        if len(group) == 1:
            return (group, math.inf, [])
        cut = int(rng.integers(1, len(group)))
        return (group, float(rng.uniform(0, 1)), [build(group[:cut]), build(group[cut:])])

    return SegmentTree.from_nested(atom_map, build(atoms))


def snapshot(tree: SegmentTree):
    return ({nid: (n.parent, tuple(n.children), tuple(n.atoms), n.expanded, n.category, n.name, n.ignored)
             for nid, n in tree.nodes.items()}, tree.atom_map.copy())


def cutter_halves(mask):
    n = int(mask.sum())
    return None if n < 2 else (np.arange(n) >= n // 2).astype(int)


def random_disk(shape, rng: np.random.Generator) -> np.ndarray:
    """A brush dab: a disk of random centre and radius (may cross the image border)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    r, c, radius = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(1, 8)
    return (yy - r) ** 2 + (xx - c) ** 2 <= radius ** 2


def apply_random_op(tree: SegmentTree, rng: np.random.Generator):
    front = tree.frontier()
    op = rng.integers(0, 9)
    try:
        if op == 8:
            nodes = [n for n in tree.nodes if n != tree.root]
            if not nodes:
                return None
            moved = [int(x) for x in rng.choice(nodes, min(len(nodes), int(rng.integers(1, 3))), replace=False)]
            return tree.regroup(moved, int(rng.choice(list(tree.nodes))))
        if op == 6:
            return tree.paint(random_disk(tree.shape, rng), int(rng.choice(front)))
        if op == 7:
            return tree.erase(random_disk(tree.shape, rng), int(rng.choice(front)))
        if op == 0:
            return tree.set_granularity(float(rng.uniform(0, 1)))
        if op == 1:
            return tree.split(int(rng.choice(front)), cutter_halves)
        if op == 2 and len(front) >= 2:
            k = int(rng.integers(2, min(4, len(front)) + 1))
            return tree.merge([int(x) for x in rng.choice(front, k, replace=False)])
        if op == 3:
            return tree.label([int(rng.choice(front))], int(rng.integers(1, 4)))
        if op == 4:
            return tree.set_ignored([int(rng.choice(front))], bool(rng.integers(0, 2)))
        return tree.rename(int(rng.choice(front)), f"r{int(rng.integers(0, 9))}")
    except TreeEditError:
        return None


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_ops=st.integers(1, 25))
def test_random_edits_keep_invariants_and_undo_to_start(seed, n_ops):
    rng = np.random.default_rng(seed)
    tree = random_tree(rng)
    tree.set_granularity(0.5)
    start = snapshot(tree)
    history = History(tree)
    states = [start]
    for _ in range(n_ops):
        history.push(apply_random_op(tree, rng))
        tree.check_invariants()
        labels, front = tree.frontier_labels()
        assert (labels >= 0).all()  # every pixel in exactly one segment
        if history.done and (not states or len(states) <= len(history.done)):
            states.append(snapshot(tree))
    end = snapshot(tree)
    while history.undo():
        tree.check_invariants()
    s0, s1 = snapshot(tree), start
    assert s0[0] == s1[0] and np.array_equal(s0[1], s1[1])
    while history.redo():
        tree.check_invariants()
    e = snapshot(tree)
    assert e[0] == end[0] and np.array_equal(e[1], end[1])


def test_merge_siblings_collapses_parent_and_non_siblings_group_under_lca():
    atom_map = np.repeat(np.arange(4), 4).reshape(4, 4)
    tree = SegmentTree.from_nested(atom_map, ([], 0.1, [([], 0.2, [([0], math.inf, []), ([1], math.inf, [])]),
                                                    ([], 0.3, [([2], math.inf, []), ([3], math.inf, [])])]))
    tree.set_granularity(1.0)
    assert len(tree.frontier()) == 4
    leaves = tree.frontier()
    edit = tree.merge(leaves[:2])
    assert tree.frontier()[0] == 1 and len(tree.frontier()) == 3
    tree.undo(edit)
    edit = tree.merge([leaves[1], leaves[2]])
    group = edit.after and [n for n, s in edit.after.items() if s is not None and edit.before.get(n) is None][0]
    assert tree.nodes[group].parent == tree.root
    assert sorted(tree.nodes[group].atoms.tolist()) == [1, 2]
    tree.check_invariants()
    assert len(tree.frontier()) == 3


def test_label_is_inherited_and_merge_keeps_the_majority_label():
    tree = SegmentTree.flat(np.array([[0, 0, 1], [2, 2, 2]]))
    a, b, c = tree.frontier()
    tree.label([c], 7)
    edit = tree.merge([a, c])
    shown = [n for n in tree.frontier() if n != b][0]
    assert tree.effective_category(shown) == 7
    assert all(tree.effective_category(ch) == 7 for ch in tree.nodes[shown].children)
    tree.undo(edit)
    assert tree.effective_category(a) is None


def test_split_of_a_leaf_uses_the_cutter_and_undo_restores_pixels():
    tree = SegmentTree.flat(np.zeros((4, 6), dtype=int))
    before = tree.atom_map.copy()
    edit = tree.split(tree.root, cutter_halves)
    assert len(tree.frontier()) == 2 and tree.n_atoms == 3
    tree.check_invariants()
    tree.undo(edit)
    assert np.array_equal(tree.atom_map, before) and tree.frontier() == [tree.root]
    with pytest.raises(TreeEditError):
        tree.split(tree.root, lambda m: None)


def nested_2x2():
    """Four 4x4 quadrant atoms under two groups (top, bottom), all shown."""
    atom_map = np.kron(np.arange(4).reshape(2, 2), np.ones((4, 4), dtype=int))
    tree = SegmentTree.from_nested(atom_map, ([], 0.1, [([], 0.2, [([0], math.inf, []), ([1], math.inf, [])]),
                                                        ([], 0.3, [([2], math.inf, []), ([3], math.inf, [])])]))
    tree.set_granularity(1.0)
    return tree


def test_paint_moves_pixels_into_the_region_and_undo_restores():
    tree = nested_2x2()
    a, b, c, d = tree.frontier()
    start = snapshot(tree)
    stroke = np.zeros(tree.shape, dtype=bool)
    stroke[2:6, 2:6] = True                     # a 4x4 square over all four quadrants
    edit = tree.paint(stroke, a)
    tree.check_invariants()
    assert tree.mask(a)[stroke].all()
    assert tree.area(a) == 16 + 12 and tree.area(b) == tree.area(c) == 12 and tree.area(d) == 12
    assert edit.pixels is not None and len(edit.pixels) == 12     # pixels already in `a` are not moved
    assert tree.paint(stroke, a) is None                          # nothing left to move
    tree.undo(edit)
    assert snapshot(tree)[0] == start[0] and np.array_equal(snapshot(tree)[1], start[1])
    tree.redo(edit)
    tree.check_invariants()
    assert tree.mask(a)[stroke].all()


def test_atom_change_log_names_every_changed_pixel_until_it_runs_out():
    rng = np.random.default_rng(3)
    tree = random_tree(rng, n_atoms=10, shape=(30, 40))
    tree.set_granularity(0.5)
    start_version, start_map = tree.atom_version, tree.atom_map.copy()
    assert tree.atom_pixels_changed_since(start_version).size == 0
    edits = []
    while tree.atom_version - start_version < ATOM_LOG_LENGTH:      # strokes and undos
        if len(edits) % 3 == 2:
            tree.undo(edits.pop())
        edit = tree.paint(random_disk(tree.shape, rng), int(rng.choice(tree.frontier())))
        if edit is not None:
            edits.append(edit)
    logged = tree.atom_pixels_changed_since(start_version)
    assert logged is not None
    changed = np.flatnonzero(start_map != tree.atom_map)
    assert changed.size and np.isin(changed, logged).all()
    while tree.atom_version - start_version <= ATOM_LOG_LENGTH:
        tree.paint(random_disk(tree.shape, rng), int(rng.choice(tree.frontier())))
    assert tree.atom_pixels_changed_since(start_version) is None     # the log no longer reaches back


def test_paint_into_a_group_joins_its_largest_leaf_and_an_emptied_region_disappears():
    tree = nested_2x2()
    a, b, c, d = tree.frontier()
    top = tree.nodes[a].parent
    tree.merge([a, b])                                            # the top group is shown as one region
    bigger = np.zeros(tree.shape, dtype=bool)
    bigger[:2, 4:] = True
    tree.paint(bigger, a)                                         # make `a` the larger leaf of the group
    edit = tree.paint(tree.mask(c), top)                          # all of region c into the group
    tree.check_invariants()
    assert c not in tree.nodes                                    # emptied: dropped, its parent spliced
    assert tree.nodes[d].parent == tree.root and tree.frontier() == [top, d]
    assert tree.area(top) == 48 and tree.mask(a).sum() == 16 + 8 + 16
    tree.undo(edit)
    tree.check_invariants()
    assert c in tree.nodes and tree.area(c) == 16


def test_erase_gives_pixels_to_the_nearest_other_region():
    tree = nested_2x2()
    a, b, c, d = tree.frontier()
    stroke = np.zeros(tree.shape, dtype=bool)
    stroke[0:2, 2:4] = True                                       # a corner of `a`, nearer `b` than `c`
    stroke[6, 1] = True                                           # a pixel of `c`: not in `a`, untouched
    edit = tree.erase(stroke, a)
    tree.check_invariants()
    assert tree.area(a) == 12 and tree.area(b) == 20 and tree.area(c) == 16
    assert tree.mask(b)[0:2, 2:4].all()
    edit2 = tree.erase(np.ones(tree.shape, dtype=bool), a)      # the whole region: it vanishes
    tree.check_invariants()
    assert a not in tree.frontier() and a not in tree.nodes
    tree.undo(edit2)
    tree.undo(edit)
    tree.check_invariants()
    assert all(tree.area(n) == 16 for n in (a, b, c, d))
    with pytest.raises(TreeEditError):
        SegmentTree.flat(np.zeros((3, 3), dtype=int)).erase(np.ones((3, 3), bool), 0)


def test_tree_file_round_trips_after_paint_and_erase():
    rng = np.random.default_rng(3)
    tree = random_tree(rng)
    tree.set_granularity(0.5)
    history = History(tree)
    front = tree.frontier()
    history.push(tree.paint(random_disk(tree.shape, rng) | random_disk(tree.shape, rng), front[0]))
    history.push(tree.erase(tree.mask(front[-1]), front[-1]))
    saved = decode_tree_file(tree_file_bytes(tree, history), "test")
    again = saved.tree
    assert snapshot(again)[0] == snapshot(tree)[0] and np.array_equal(again.atom_map, tree.atom_map)
    again.check_invariants()
    while saved.history.undo():
        again.check_invariants()
    while history.undo():
        pass
    assert snapshot(again)[0] == snapshot(tree)[0] and np.array_equal(again.atom_map, tree.atom_map)


def test_regroup_onto_a_leaf_makes_it_a_group_and_refuses_cycles():
    tree = nested_2x2()
    a, b, c, d = tree.frontier()
    start = snapshot(tree)
    edit = tree.regroup([c], a)
    tree.check_invariants()
    assert tree.area(a) == 32 and c in tree.nodes[a].children and len(tree.nodes[a].children) == 2
    assert tree.frontier() == [a, b, d] and tree.nodes[d].parent == tree.root   # c's old group spliced
    assert tree.regroup([c], a) is None                                          # already there
    with pytest.raises(TreeEditError):
        tree.regroup([tree.nodes[a].parent], a)                                  # into its own sub-region
    with pytest.raises(TreeEditError):
        tree.regroup([a, c], b)                                                  # with a region inside it
    tree.undo(edit)
    assert snapshot(tree)[0] == start[0]


def test_forget_category_unlabels_only_that_category():
    tree = nested_2x2()
    a, b, c, d = tree.frontier()
    tree.label([tree.nodes[a].parent], 5)
    tree.label([c], 6)
    edit = tree.forget_category(5)
    assert tree.effective_category(a) is None and tree.effective_category(c) == 6
    tree.undo(edit)
    assert tree.effective_category(b) == 5
    assert tree.forget_category(9) is None


def pixel_categories(tree: SegmentTree) -> np.ndarray:
    """What each pixel is labelled (or ignored: -1) as the canvas and the exports see it."""
    lut = np.zeros(tree.n_atoms, dtype=np.int64)
    for nid in tree.frontier():
        ignored = any(tree.nodes[n].ignored for n in [nid] + tree.ancestors(nid))
        lut[tree.nodes[nid].atoms] = -1 if ignored else (tree.effective_category(nid) or 0)
    return lut[tree.atom_map]


@pytest.mark.parametrize("seed", range(8))
def test_no_granularity_folds_a_labelled_region_into_an_unlabelled_one(seed):
    """Labels and ignore marks set at one granularity decide the same pixels at every other
    (a coarser τ used to fold a labelled region into its unlabelled parent: gone from the
    canvas and the exports); undo still restores the frontier exactly."""
    rng = np.random.default_rng(seed)
    tree = random_tree(rng, n_atoms=24)
    history = History(tree)
    for _ in range(6):
        history.push(tree.set_granularity(float(rng.uniform(0, 1))))
        front = tree.frontier()
        chosen = [int(n) for n in rng.choice(front, min(2, len(front)), replace=False)]
        history.push(tree.label(chosen[:1], int(rng.integers(1, 4))))
        if len(chosen) > 1 and rng.random() < 0.5:
            history.push(tree.set_ignored(chosen[1:], True))
        expected = pixel_categories(tree)
        for tau in rng.uniform(0, 1, 5):
            before = tree.frontier()
            edit = tree.set_granularity(float(tau))
            assert np.array_equal(pixel_categories(tree), expected)
            if edit is not None:
                tree.undo(edit)
                assert tree.frontier() == before
                tree.redo(edit)
            tree.check_invariants()


def test_accepting_as_one_merges_siblings_suggested_alike_and_labels_the_rest_apart():
    # root -> A (atoms 0, 1, 2) and B (atoms 3, 4); A -> a0, a1, a2; B -> b3, b4
    atom_map = np.repeat(np.arange(5), 4).reshape(5, 4)
    leaf = lambda a: ([a], math.inf, [])
    tree = SegmentTree.from_nested(atom_map, ([], 0.1, [([], 0.2, [leaf(0), leaf(1), leaf(2)]),
                                                        ([], 0.3, [leaf(3), leaf(4)])]))
    tree.set_granularity(1.0)
    front = tree.frontier()
    by_atom = {int(tree.nodes[n].atoms[0]): n for n in front}
    suggested = {0: 7, 1: 7, 2: 8, 3: 9, 4: 9}
    tree.suggestions = {by_atom[a]: Suggestion(c, 0.9) for a, c in suggested.items()}
    start = snapshot(tree)
    separately = tree.accept_suggestions(front)
    assert len(tree.frontier()) == 5
    tree.undo(separately)
    edit = tree.accept_suggestions(front, as_one=True)
    tree.check_invariants()
    shown = {tuple(sorted(int(a) for a in tree.nodes[n].atoms)): tree.effective_category(n) for n in tree.frontier()}
    assert shown == {(0, 1): 7, (2,): 8, (3, 4): 9}        # B collapsed, A's two 7s grouped
    tree.undo(edit)
    assert snapshot(tree)[0] == start[0]
    tree.redo(edit)
    assert {tuple(sorted(int(a) for a in tree.nodes[n].atoms)) for n in tree.frontier()} == set(shown)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_ops=st.integers(0, 12))
def test_accepting_random_suggestions_as_one_keeps_every_pixel_s_suggested_label(seed, n_ops):
    rng = np.random.default_rng(seed)
    tree = random_tree(rng)
    tree.set_granularity(float(rng.uniform(0.3, 1.0)))
    for _ in range(n_ops):
        apply_random_op(tree, rng)
    front = tree.frontier()
    tree.suggestions = {n: Suggestion(int(rng.integers(1, 3)), 0.9) for n in front if rng.random() < 0.8}
    expected = pixel_categories(tree).copy()
    for n, s in tree.suggestions.items():
        if tree.live_suggestion(n) is not None:
            expected[tree.mask(n)] = s.category
    before = snapshot(tree)
    edit = tree.accept_suggestions(front, as_one=True)
    tree.check_invariants()
    assert np.array_equal(pixel_categories(tree), expected)
    if edit is not None:
        tree.undo(edit)
        assert snapshot(tree)[0] == before[0]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_reading_copy_shares_the_atom_map_and_no_edit_writes_into_it(seed):
    """The suggester reads copies on another thread; a copy used to carry its own atom map (an
    image-sized array per image of the project). Edits now replace the map, never write into
    the one a copy holds: after any edits, undos and redos each copy still reads what it saw."""
    rng = np.random.default_rng(seed)
    tree = random_tree(rng)
    copies, edits = [], []
    for _ in range(12):
        copy = tree.reading_copy()
        assert copy.atom_map is tree.atom_map
        copies.append((copy, copy.atom_map.copy()))
        edit = apply_random_op(tree, rng)
        if edit is not None:
            edits.append(edit)
        if edits and rng.random() < 0.3:
            tree.undo(edits[-1])
            tree.redo(edits[-1])
    for copy, seen in copies:
        assert np.array_equal(copy.atom_map, seen)
    tree.check_invariants()
