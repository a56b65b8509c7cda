"""Project folders: round trips, missing images, damaged and hostile files, migration, autosave."""
from __future__ import annotations

import copy

import io
import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import core.project as project_module
import core.tree_file as tree_file
from core.atomic_io import npz_bytes
from core.project import DamagedFileError, Project, ProjectError
from core.safe_json import DataFormatError
from core.settings import Settings
from core.tree import History, SegmentTree
from core.tree_file import load_tree_file, save_tree_file, tree_file_bytes
from tests.export_fixtures import CATEGORIES, hard_tree


def halves(mask):
    return (np.arange(int(mask.sum())) % 2).astype(np.int32)


def edited_tree():
    """A tree with a history: merge, label, rename, ignore, a leaf cut anew, one undone edit."""
    tree = hard_tree()
    history = History(tree)
    history.push(tree.merge([2, 3]))
    history.push(tree.rename(4, "left part"))
    history.push(tree.set_ignored([5]))
    history.push(tree.split(7, halves))
    history.push(tree.label([1], 2))
    history.undo()
    return tree, history


def same_tree(a: SegmentTree, b: SegmentTree) -> bool:
    return (np.array_equal(a.atom_map, b.atom_map) and a.root == b.root and a.image_size == b.image_size
            and a.frontier() == b.frontier() and set(a.nodes) == set(b.nodes)
            and all(_same_node(a.nodes[n], b.nodes[n]) for n in a.nodes))


def _same_node(x, y) -> bool:
    return (x.parent, x.children, x.atoms.tolist(), x.expanded, x.category, x.name, x.color, x.visible,
            x.ignored) == (y.parent, y.children, y.atoms.tolist(), y.expanded, y.category, y.name, y.color,
                           y.visible, y.ignored) and (x.cost == y.cost or (math.isnan(x.cost) and math.isnan(y.cost)))


def make_project(tmp_path, n_images=2):
    (tmp_path / "images").mkdir(exist_ok=True)
    project = Project.create(tmp_path / "proj", CATEGORIES, Settings(tau=0.3))
    for i in range(n_images):
        path = tmp_path / "proj" / "images" / f"im{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"not decoded here")
        project.add_image(path, 32, 24)
    project.save()
    return project


def test_project_round_trip_with_relative_paths(tmp_path):
    project = make_project(tmp_path)
    data = json.loads((tmp_path / "proj" / "project.json").read_text())
    assert data["schema_version"] == 1 and data["settings"]["tau"] == 0.3
    assert [i["path"] for i in data["images"]] == ["images/im0.png", "images/im1.png"]
    assert data["categories"][2] == {"id": 3, "name": "sky", "color": [40, 40, 200], "isthing": False,
                                     "supercategory": ""}
    shutil.move(tmp_path / "proj", tmp_path / "moved")
    again = Project.open(tmp_path / "moved")
    assert again.problems == [] and again.settings.tau == 0.3
    assert again.categories == project.categories
    assert again.image_path(1) == (tmp_path / "moved" / "images" / "im0.png").resolve()


def test_tree_and_history_round_trip(tmp_path):
    tree, history = edited_tree()
    save_tree_file(tmp_path / "t.cuttree.npz", tree, history)
    saved = load_tree_file(tmp_path / "t.cuttree.npz")
    assert same_tree(tree, saved.tree)
    assert len(saved.history.done) == 4 and len(saved.history.undone) == 1
    saved.history.redo()
    history.redo()
    assert same_tree(tree, saved.tree)
    for _ in range(5):
        assert saved.history.undo() and history.undo()
        assert same_tree(tree, saved.tree)
        saved.tree.check_invariants()
    assert same_tree(saved.tree, hard_tree())


def test_large_atom_counts_use_32_bits(tmp_path):
    labels = np.arange(300 * 300, dtype=np.int32).reshape(300, 300) % 70000
    tree = SegmentTree.flat(labels)
    save_tree_file(tmp_path / "big.cuttree.npz", tree)
    assert np.array_equal(load_tree_file(tmp_path / "big.cuttree.npz").tree.atom_map, labels)


def test_missing_images_are_reported_not_fatal(tmp_path):
    make_project(tmp_path)
    (tmp_path / "proj" / "images" / "im1.png").unlink()
    project = Project.open(tmp_path / "proj")
    assert len(project.images) == 2
    assert len(project.problems) == 1 and "images/im1.png" in project.problems[0]


def test_damaged_annotation_is_set_aside_and_the_rest_loads(tmp_path):
    project = make_project(tmp_path)
    project.save_tree(1, hard_tree())
    project.save_tree(2, hard_tree())
    damaged = project.annotation_path(1)
    content = damaged.read_bytes()[:-200]
    damaged.write_bytes(content)
    again = Project.open(tmp_path / "proj")
    with pytest.raises(DamagedFileError, match=damaged.name) as info:
        again.load_tree(1)
    assert "kept as" in str(info.value) and not damaged.exists()
    aside = list(damaged.parent.glob(damaged.name + ".damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert again.load_tree(1) is None                               # starts without annotations
    assert [entry.id for entry, _ in again.iter_trees()] == [2]
    again.save_tree(1, hard_tree())
    assert aside[0].read_bytes() == content                         # never overwritten


def hostile_tree_files():
    """(name, bytes) of annotation files that must be refused."""
    good = tree_file.tree_arrays(hard_tree())

    def variant(**changes):
        arrays = dict(good)
        arrays.update(changes)
        return npz_bytes({k: v for k, v in arrays.items() if v is not None})

    cycle = good["child_ids"].copy()
    cycle[0] = 0                                                     # root lists itself as a child
    pickled = io.BytesIO()
    with zipfile.ZipFile(pickled, "w") as archive:
        with archive.open("atom_map.npy", "w") as member:
            np.lib.format.write_array(member, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    meta = json.loads(good["meta"].tobytes())
    return [
        ("truncated", tree_file_bytes(hard_tree())[:-300]),
        ("not a zip", b"hello"),
        ("pickle", pickled.getvalue()),
        ("missing array", variant(node_color=None)),
        ("wrong dtype", variant(atom_map=good["atom_map"].astype(np.float32))),
        ("cycle", variant(child_ids=cycle)),
        ("atoms out of range", variant(atom_ids=good["atom_ids"] + 1000)),
        ("bad index", variant(atom_ptr=good["atom_ptr"][::-1].copy())),
        ("deep meta", variant(meta=np.frombuffer(b"[" * 1000 + b"]" * 1000, np.uint8))),
        ("huge number", variant(meta=np.frombuffer(json.dumps({**meta, "root": 10 ** 30}).encode(), np.uint8))),
        ("wrong type", variant(meta=np.frombuffer(json.dumps({**meta, "names": "x"}).encode(), np.uint8))),
    ]


@pytest.mark.parametrize("name, raw", hostile_tree_files(), ids=[n for n, _ in hostile_tree_files()])
def test_hostile_annotation_files_are_refused_cleanly(tmp_path, name, raw):
    path = tmp_path / "x.cuttree.npz"
    path.write_bytes(raw)
    with pytest.raises(DataFormatError, match="x.cuttree.npz"):
        load_tree_file(path)


def test_oversized_arrays_are_refused_before_unpacking(tmp_path, monkeypatch):
    save_tree_file(tmp_path / "x.cuttree.npz", hard_tree())
    monkeypatch.setattr(tree_file, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(DataFormatError, match="too large"):
        load_tree_file(tmp_path / "x.cuttree.npz")


@pytest.mark.parametrize("text, message", [
    ('{"schema_version": 1, "images": "many"}', "'images' must be a list"),
    ('{"schema_version": "1"}', "must be an integer"),
    ('{"schema_version": 1' + "0" * 400 + "}", "too large"),
    ('{"schema_version": 1, "x": ' + "[" * 200 + "]" * 200 + "}", "nested"),
    ('{"schema_version": 1, "images": [{"id": 1, "path": "a.png", "width": 1e400, "height": 2, '
     '"annotation": "annotations/a.cuttree.npz"}]}', "out of range"),
    ('{"schema_version": 1, "images": [{"id": 1, "path": "a.png", "width": 10, "height": 2, '
     '"annotation": "../../etc/passwd"}]}', "directly in annotations/"),
    ('{"schema_version": 1, "categories": [{"id": 0, "name": "bg"}]}', "outside"),
    ('{"schema_version": 1, "settings": {"tau": "big"}}', "tau"),
    ("[1, 2", "invalid JSON"),
])
def test_hostile_project_json_is_refused_cleanly(tmp_path, text, message):
    (tmp_path / "project.json").write_text(text)
    with pytest.raises((DataFormatError, ProjectError), match="project.json") as info:
        Project.open(tmp_path)
    assert message in str(info.value)


def test_huge_arrays_and_files_are_refused(tmp_path, monkeypatch):
    make_project(tmp_path, n_images=3)
    monkeypatch.setattr(project_module, "MAX_IMAGES", 2)
    with pytest.raises(DataFormatError, match="3 items"):
        Project.open(tmp_path / "proj")
    monkeypatch.setattr(project_module, "MAX_PROJECT_JSON", 100)
    with pytest.raises(DataFormatError, match="bytes"):
        Project.open(tmp_path / "proj")


def test_migration_hook_and_newer_versions(tmp_path, monkeypatch):
    make_project(tmp_path)
    data = json.loads((tmp_path / "proj" / "project.json").read_text())
    data["classes"] = data.pop("categories")                         # pretend v1 called them classes
    (tmp_path / "proj" / "project.json").write_text(json.dumps(data))
    monkeypatch.setattr(project_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(project_module.MIGRATIONS, 1,
                        lambda d: {**{k: v for k, v in d.items() if k != "classes"}, "categories": d["classes"]})
    assert Project.open(tmp_path / "proj").categories == CATEGORIES
    monkeypatch.setattr(project_module, "SCHEMA_VERSION", 1)
    data["schema_version"] = 5
    (tmp_path / "proj" / "project.json").write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="newer CutTree"):
        Project.open(tmp_path / "proj")


def test_create_refuses_to_overwrite(tmp_path):
    make_project(tmp_path)
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "proj")


def test_snapshot_is_what_the_tree_was_and_write_puts_it_on_disk(tmp_path):
    """Autosave's pair: a snapshot taken now is not changed by later edits; write stores it."""
    project = make_project(tmp_path)
    tree, history = edited_tree()
    expected = copy.deepcopy(tree)
    snapshot = project.snapshot(1, tree, history, {"edited": True})
    history.push(tree.label([tree.frontier()[0]], 3))                # an edit after the snapshot
    assert not project.has_tree(1)
    Project.write(snapshot)
    saved = project.load_tree(1)
    assert same_tree(saved.tree, expected) and not same_tree(saved.tree, tree)
    assert saved.extra == {"edited": True} and len(saved.history.done) == len(history.done) - 1


def test_shipped_label_set_has_nine_categories_for_the_number_keys():
    categories = project_module.load_label_set(project_module.LABEL_SETS / "default.json")
    assert [c.id for c in categories] == list(range(1, 10))
    assert {c.name for c in categories if not c.isthing} == {"sky", "ground", "water"}


PANOPTIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_panoptic_samples"


@pytest.mark.skipif(not (PANOPTIC / "panoptic_coco_categories.json").is_file(), reason="panoptic sample not present")
def test_label_set_from_the_coco_panoptic_category_list():
    categories = project_module.load_label_set(PANOPTIC / "panoptic_coco_categories.json")
    assert len(categories) == 133 and categories[0].name == "person" and categories[0].isthing
    assert sum(not c.isthing for c in categories) == 53


def test_label_set_from_a_coco_file_keeps_names_ids_and_thing_flags(tmp_path):
    path = tmp_path / "panoptic.json"
    path.write_text(json.dumps({"images": [], "categories": [
        {"id": 1, "name": "person", "isthing": 1 == 1, "color": [220, 20, 60], "supercategory": "person"},
        {"id": 184, "name": "tree-merged", "isthing": False, "color": [107, 142, 35]}]}))
    categories = project_module.load_label_set(path)
    assert [(c.id, c.name, c.isthing) for c in categories] == [(1, "person", True), (184, "tree-merged", False)]


@pytest.mark.parametrize("content, reason", [
    ('{"images": []}', 'a "categories" list'),
    ("[1, 2]", "categories[0]"),
    ('{"categories": []}', "is empty"),
    ('{"categories": [{"id": 0, "name": "x"}]}', "categories[0]"),
    ('{"categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}', "repeated"),
    ('{"categories": [{"id": 1, "name": "a", "color": [300, 0, 0]}]}', "'color'"),
    ("{not json", "labels.json"),
])
def test_bad_label_sets_name_the_file_and_the_problem(tmp_path, content, reason):
    path = tmp_path / "labels.json"
    path.write_text(content)
    with pytest.raises(DataFormatError) as info:
        project_module.load_label_set(path)
    assert "labels.json" in str(info.value) and reason in str(info.value)
