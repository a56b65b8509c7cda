"""Pipeline: image -> segment tree, nesting and partition invariants, progress, cancel."""
import dataclasses

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from core.cut.hierarchy import CutNode, label_tokens, leaves_at
from core.cut.methods import METHODS
from core.errors import Cancelled
from core.jobs import CancelToken
from core.pipeline import RegionCutter, Segmenter, build_tree, mask_shape, segment
from core.refine import BilinearSampler, GuidedLabels, absorb_specks, concept_assignment, pamr
from core.settings import Settings
from core.tree import History


@pytest.fixture(scope="module")
def coffee():
    return skimage.data.coffee()[::2, ::2].copy()  # 200 x 300


@pytest.fixture(scope="module")
def coffee_tree(coffee):
    return segment(coffee, Settings(classic_tokens=32))


def nested_partition_counts(tree) -> list[int]:
    """Check that the tree nests and its frontier partitions the image at granularities 0..0.8;
    the number of shown regions at each."""
    tree.check_invariants()
    counts = []
    for g in np.linspace(0.0, 0.8, 9):
        tree.set_granularity(g)
        labels, front = tree.frontier_labels()
        assert (labels >= 0).all() and len(np.unique(labels)) == len(front)
        counts.append(len(front))
        for nid in front:
            node = tree.nodes[nid]
            if node.children:
                union = np.logical_or.reduce([tree.mask(c) for c in node.children])
                assert np.array_equal(union, tree.mask(nid))
    assert counts == sorted(counts)                    # granularity is a pruning
    return counts


def test_tree_nests_and_frontier_partitions_at_every_granularity(coffee_tree):
    tree = coffee_tree
    assert tree.atom_map.shape == (200, 300) and tree.image_size == (200, 300)
    counts = nested_partition_counts(tree)
    assert counts[0] == 1 and counts[-1] > 5
    tree.set_granularity(0.5)


def test_default_view_is_the_reference_concept_assignment(coffee):
    settings = Settings(classic_tokens=32, method="diffcut")
    seg = Segmenter(settings)
    features = dataclasses.replace(seg.encode(coffee), local=False)  # as diffusion features
    tree = seg.cut(coffee, features)
    from core.cut.methods import METHODS
    root = METHODS["diffcut"].run(features, settings, None)
    expected = concept_assignment(features.tokens, label_tokens(root, features.grid, settings.tau), (200, 300))
    labels, _ = tree.frontier_labels()
    pairs = np.unique(np.stack([labels.ravel(), expected.ravel()]), axis=1)
    assert pairs.shape[1] == len(np.unique(labels)) == len(np.unique(expected))


def test_concept_assignment_equals_upsampled_features_argmax():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(6, 9, 16)).astype(np.float32)
    token_labels = rng.integers(0, 4, (6, 9))
    out = concept_assignment(tokens, token_labels, (37, 50))
    norm = torch.from_numpy(tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)).permute(2, 0, 1)[None]
    up = F.interpolate(norm, size=(37, 50), mode="bilinear", align_corners=False)[0]
    flat = norm[0].reshape(16, -1).T
    emb = torch.stack([flat[torch.from_numpy(token_labels.ravel() == k)].mean(0) for k in range(4)])
    expected = torch.einsum("chw,kc->khw", up, emb).argmax(0).numpy()
    assert (out == expected).mean() > 0.999  # float rounding at exact ties only


def test_bilinear_sampler_matches_torch():
    values = np.random.default_rng(1).normal(size=(5, 7)).astype(np.float32)
    sampler = BilinearSampler((5, 7), (23, 41))
    ref = F.interpolate(torch.from_numpy(values)[None, None], size=(23, 41), mode="bilinear",
                        align_corners=False)[0, 0].numpy().ravel()
    np.testing.assert_allclose(sampler.sample(values), ref, atol=1e-5)
    pixels = np.arange(0, 23 * 41, 3)
    assert np.array_equal(sampler.nonnegative(values, pixels), ref[pixels] >= 0)


def test_pamr_snaps_a_shifted_boundary_to_the_image_edge():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 20:] = 255
    labels = np.zeros((40, 40), np.int32)
    labels[:, 16:] = 1  # boundary 4 pixels off the edge
    refined = pamr(image, labels, iterations=10, dilations=(1, 2, 4))
    assert (refined[:, 22:] == 1).all() and (refined[:, :14] == 0).all()
    assert (refined[:, 16:20] == 0).mean() > 0.9


def test_pipeline_with_pamr_and_a_capped_mask_size(coffee):
    tree = segment(coffee, Settings(classic_tokens=16, pamr=True, max_mask_side=128))
    assert tree.atom_map.shape == mask_shape(coffee.shape, 128) == (85, 128)
    assert tree.image_size == (200, 300)
    tree.check_invariants()


def test_progress_reports_every_stage_and_cancel_is_honoured(coffee):
    stages = []
    segment(coffee, Settings(classic_tokens=16), progress=lambda s, f: stages.append(s))
    assert {"encode", "cut", "refine", "tree"} <= set(stages)
    token = CancelToken()

    def cancel_at_cut(stage, fraction):
        if stage == "cut":
            token.cancel()
    with pytest.raises(Cancelled):
        segment(coffee, Settings(classic_tokens=16), progress=cancel_at_cut, cancel=token)


def test_split_beyond_the_atoms_cuts_a_leaf_and_undo_restores(coffee):
    seg = Segmenter(Settings(classic_tokens=24))
    features = seg.encode(coffee)
    tree = seg.cut(coffee, features)
    cutter = seg.cutter(coffee, features, tree.shape)
    history = History(tree)
    tree.set_granularity(10.0)  # every split shown: the frontier is the atoms
    before = tree.atom_map.copy()
    leaf = max(tree.frontier(), key=tree.area)
    history.push(tree.split(leaf, cutter))
    tree.check_invariants()
    assert len(tree.nodes[leaf].children) == 2
    assert all(tree.area(c) > 0 for c in tree.nodes[leaf].children)
    history.undo()
    assert np.array_equal(tree.atom_map, before)


@pytest.mark.parametrize("method, most_colour_splits", [("walk", 2), ("diffcut", 6)])
def test_finest_regions_are_mostly_cut_by_tokens_and_tables_rebuild_after_release(coffee, monkeypatch, method,
                                                                                  most_colour_splits):
    """The cutter's split of a leaf's core tokens on the regularised graph moves pixels for
    nearly all of the largest leaves (cutting all the tokens of the bare sub-graph, 9 of these
    10 fell back to colour 2-means, whose halves are not contiguous; all the tokens of the
    regularised graph, 5); a released cutter rebuilds its tables and cuts the same. With
    `diffcut` the graph is DiffCut's affinity instead of the walk's."""
    seg = Segmenter(Settings(method=method))
    features = seg.encode(coffee)
    tree = seg.cut(coffee, features)
    cutter = seg.cutter(coffee, features, tree.shape)
    assert cutter.chooser.guide._cache is not None       # the cut's colour-guided table, shared
    assert (cutter.graph() is cutter.graph()) and cutter.graph().shape == (features.grid[0] * features.grid[1],) * 2
    colour_splits = []
    original = RegionCutter._colour_split
    monkeypatch.setattr(RegionCutter, "_colour_split",
                        lambda self, pixels: colour_splits.append(1) or original(self, pixels))
    tree.set_granularity(10.0)
    leaves = sorted(tree.frontier(), key=tree.area, reverse=True)[:10]
    cuts = [cutter(tree.mask(leaf)) for leaf in leaves]
    assert all(c is not None and len(np.unique(c)) == 2 for c in cuts)
    assert len(colour_splits) <= most_colour_splits
    cutter.release()
    assert cutter.chooser.guide._cache is None
    assert np.array_equal(cutter(tree.mask(leaves[0])), cuts[0])


def test_region_cutter_falls_back_to_colour_inside_one_token():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = (200, 30, 30)
    seg = Segmenter(Settings(classic_tokens=4))
    features = seg.encode(image)
    cutter = RegionCutter(image, features, (64, 64), Settings(classic_tokens=4))
    mask = np.zeros((64, 64), bool)
    mask[0:16, 24:40] = True  # two token cells: too few to cut by tokens, so by colour
    labels = cutter(mask)
    cols = np.nonzero(mask)[1]
    assert labels is not None and len(np.unique(labels[cols < 32])) == 1 and labels[cols < 32][0] != labels[cols >= 32][0]


def test_local_features_default_view_is_the_guided_token_labels_without_weak_specks(coffee):
    settings = Settings(classic_tokens=32, method="walk")
    seg = Segmenter(settings)
    features = seg.encode(coffee)
    assert features.local and settings.cut_method == "walk"
    tree = seg.cut(coffee, features)
    root = METHODS["walk"].run(features, settings, None)
    shown = leaves_at(root, settings.tau)
    guided = GuidedLabels(coffee, features.grid).assign([leaf.tokens for leaf in shown],
                                                        np.arange(200 * 300)).reshape(200, 300)
    expected = absorb_specks(guided.astype(np.int32), coffee)
    labels, _ = tree.frontier_labels()
    pairs = np.unique(np.stack([labels.ravel(), expected.ravel()]), axis=1)
    assert pairs.shape[1] == len(np.unique(labels)) == len(np.unique(expected))


def test_guided_labels_follow_a_colour_edge_inside_a_token_cell():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 17:] = 255                       # the edge lies inside the third token column
    groups = [np.array([r * 5 + c for r in range(5) for c in range(2)]),
              np.array([r * 5 + c for r in range(5) for c in range(2, 5)])]
    choice = GuidedLabels(image, (5, 5)).assign(groups, np.arange(40 * 40)).reshape(40, 40)
    # bilinear label upsampling alone would put the boundary at column 16, between the cells
    assert (choice[:, :17] == 0).all() and (choice[:, 17:] == 1).all()


def test_guided_labels_on_a_flat_image_are_the_bilinear_label_upsampling():
    rng = np.random.default_rng(3)
    token_labels = rng.integers(0, 4, (6, 9))
    groups = [np.flatnonzero(token_labels.ravel() == k) for k in range(4)]
    flat = np.full((48, 72, 3), 128, np.uint8)
    choice = GuidedLabels(flat, (6, 9)).assign(groups, np.arange(48 * 72)).reshape(48, 72)
    onehot = F.one_hot(torch.from_numpy(token_labels), 4).permute(2, 0, 1)[None].float()
    up = F.interpolate(onehot, size=(48, 72), mode="bilinear", align_corners=False)[0]
    best = up.max(dim=0).values
    ties = (up >= best - 1e-6).sum(dim=0) > 1
    assert (choice == up.argmax(dim=0).numpy())[~ties.numpy()].all()
    assert up.numpy()[choice, np.arange(48)[:, None], np.arange(72)[None]].min() > 0


def test_a_region_whose_sibling_lost_every_pixel_splits_no_earlier_than_its_parent():
    """P (cost 0.6) holds A (cost 0.3: A1, A2) and B, and B's pixels all went elsewhere: at
    granularity 0.5 P is shown whole, so A (standing for P) must not show A1 and A2."""
    a1, a2, b = (CutNode(np.array([i])) for i in range(3))
    a = CutNode(np.array([0, 1]), 0.3, [a1, a2])
    p = CutNode(np.array([0, 1, 2]), 0.6, [a, b])
    root = CutNode(np.array([0, 1, 2, 3]), 0.1, [p, CutNode(np.array([3]))])
    pixels = {id(a1): np.array([0, 1]), id(a2): np.array([2, 3]), id(root.children[1]): np.array([4, 5, 6, 7])}
    tree = build_tree(root, pixels, (2, 4), (2, 4))
    tree.set_granularity(0.5)
    assert len(tree.frontier()) == 2
    tree.set_granularity(0.65)
    assert len(tree.frontier()) == 3
