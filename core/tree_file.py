"""The per-image annotation file: a segment tree (and optionally its undo history) in an `.npz`.

Layout (no pickle anywhere; read with `np.load(allow_pickle=False)`):
- `atom_map`: (h, w) uint16 when there are fewer than 65536 atoms, else int32;
- one node table for the tree and every node state recorded by the kept edits: `node_owner`
  (-1 = the tree, 2*i / 2*i+1 = edit i before / after), `node_id`, `node_parent` (-1 = none),
  `node_cost`, `node_category`, `node_flags` (bits: expanded, visible, ignored, has category),
  `node_color` (n, 3), children and atoms as CSR pairs (`child_ptr`/`child_ids`, `atom_ptr`/`atom_ids`);
- edit pixel changes concatenated: `edit_pix_ptr`, `edit_pixels`, `edit_atoms_before`, `edit_atoms_after`;
- `meta`: UTF-8 JSON (format, version, root, image size, next id, the τ the tree was pruned at,
  node names, edit kinds and their τ changes, extra, descriptor source).
Since version 2 (label suggestions): rejected suggestions per node state as a CSR pair
(`reject_ptr`/`reject_ids`); `descriptor_grid` (h, w, d) float16, when the tree has one; the
tree's suggestions as `suggest_node`, `suggest_category`, `suggest_confidence`. Version 1 files
have none of these and load with no descriptors and no suggestions.
Loading validates every array and the tree structure before building anything, so a damaged or
hostile file raises `DataFormatError` naming the file instead of looping or crashing.
"""
from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from core.atomic_io import atomic_write_npz, npz_bytes
from core.errors import CutTreeError, printable
from core.safe_json import DataFormatError, Fields, parse_json
from core.descriptors import DescriptorGrid
from core.tree import Edit, History, Node, SegmentTree, Suggestion

FORMAT = "cuttree-tree"
VERSION = 2
MAX_SIDE = 65536
MAX_MEMBER_BYTES = 512 * 1024 ** 2    # no array in a tree file may unpack to more than this
# Node states in one file (the tree and the kept edits'). A tree has fewer than twice as many
# nodes as atoms: ~2,000 for the classic encoder, ~32,000 for a 128x128 diffusion grid; a
# table beyond this is damage or an attack, refused from its header before a node is built.
MAX_NODES = 250_000
MAX_META_BYTES = 64 * 1024 ** 2       # the meta JSON: node names and edit records of MAX_NODES nodes
_NODE_TABLES = ("node_owner", "node_id", "node_parent", "node_cost", "node_category", "node_flags",
                "node_color", "child_ptr", "atom_ptr")
MAX_HISTORY = 50                       # edits kept in the file (most recent)
_EXPANDED, _VISIBLE, _IGNORED, _HAS_CATEGORY = 1, 2, 4, 8


class NewerFileError(CutTreeError):
    """An annotation file written by a newer CutTree: readable by it, so refused and left untouched."""


@dataclass
class SavedTree:
    """What an annotation file holds."""

    tree: SegmentTree
    history: Optional[History] = None
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- writing
def tree_file_bytes(tree: SegmentTree, history: Optional[History] = None,
                    extra: Optional[dict[str, Any]] = None) -> bytes:
    """Encode a tree (and the last MAX_HISTORY edits of its history) as `.npz` bytes."""
    return npz_bytes(tree_arrays(tree, history, extra))


def save_tree_file(path: Path, tree: SegmentTree, history: Optional[History] = None,
                   extra: Optional[dict[str, Any]] = None) -> None:
    """Write the annotation file atomically."""
    atomic_write_npz(path, tree_arrays(tree, history, extra))


def tree_arrays(tree: SegmentTree, history: Optional[History] = None,
                extra: Optional[dict[str, Any]] = None) -> dict[str, np.ndarray]:
    """The arrays of an annotation file (see the module docstring)."""
    extra = extra or {}
    done = history.done[-MAX_HISTORY:] if history else []
    undone = history.undone[-(MAX_HISTORY - len(done)):] if history and len(done) < MAX_HISTORY else []
    edits = done + undone
    states: list[tuple[int, Node]] = [(-1, n) for n in tree.nodes.values()]
    absent: list[dict[str, list[int]]] = []
    for i, edit in enumerate(edits):
        gone = {"before": [], "after": []}
        for side, table in ((0, edit.before), (1, edit.after)):
            for nid, node in table.items():
                if node is None:
                    gone["before" if side == 0 else "after"].append(int(nid))
                else:
                    states.append((2 * i + side, node))
        absent.append(gone)
    arrays = _node_arrays(states)
    arrays.update(_pixel_arrays(edits))
    arrays.update(_suggestion_arrays(tree))
    big = tree.n_atoms > 65535
    arrays["atom_map"] = tree.atom_map.astype(np.int32 if big else np.uint16)
    meta = {
        "format": FORMAT, "version": VERSION, "root": int(tree.root),
        "image_size": [int(v) for v in tree.image_size], "next_id": int(tree.next_id),
        "granularity": tree.granularity,
        "names": [node.name for _, node in states],
        "edits": [{"kind": e.kind, "next_id": list(map(int, e.next_id)), "n_atoms": list(map(int, e.n_atoms)),
                   "absent_before": g["before"], "absent_after": g["after"],
                   "has_pixels": e.pixels is not None,
                   **({"granularity": list(e.granularity)} if e.granularity is not None else {})}
                  for e, g in zip(edits, absent)],
        "done": len(done), "extra": extra,
        "descriptor_source": tree.descriptors.source if tree.descriptors is not None else None,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta, allow_nan=False).encode("utf-8"), dtype=np.uint8)
    return arrays


def _node_arrays(states: list[tuple[int, Node]]) -> dict[str, np.ndarray]:
    nodes = [n for _, n in states]
    flags = [(_EXPANDED * n.expanded) | (_VISIBLE * n.visible) | (_IGNORED * n.ignored)
             | (_HAS_CATEGORY * (n.category is not None)) for n in nodes]
    return {
        "node_owner": np.array([o for o, _ in states], dtype=np.int32),
        "node_id": np.array([n.id for n in nodes], dtype=np.int64),
        "node_parent": np.array([-1 if n.parent is None else n.parent for n in nodes], dtype=np.int64),
        "node_cost": np.array([n.cost for n in nodes], dtype=np.float64),
        "node_category": np.array([n.category or 0 for n in nodes], dtype=np.int64),
        "node_flags": np.array(flags, dtype=np.uint8),
        "node_color": np.array([n.color for n in nodes], dtype=np.uint8).reshape(-1, 3),
        "child_ptr": _ptr([len(n.children) for n in nodes]),
        "child_ids": np.array([c for n in nodes for c in n.children], dtype=np.int64),
        "atom_ptr": _ptr([len(n.atoms) for n in nodes]),
        "atom_ids": (np.concatenate([n.atoms for n in nodes]) if nodes else np.zeros(0)).astype(np.int32),
        "reject_ptr": _ptr([len(n.rejected) for n in nodes]),
        "reject_ids": np.array([c for n in nodes for c in n.rejected], dtype=np.int64),
    }


def _suggestion_arrays(tree: SegmentTree) -> dict[str, np.ndarray]:
    items = sorted(tree.suggestions.items())
    out = {"suggest_node": np.array([nid for nid, _ in items], dtype=np.int64),
           "suggest_category": np.array([s.category for _, s in items], dtype=np.int64),
           "suggest_confidence": np.array([s.confidence for _, s in items], dtype=np.float64)}
    if tree.descriptors is not None:
        out["descriptor_grid"] = tree.descriptors.values
    return out


def _pixel_arrays(edits: Sequence[Edit]) -> dict[str, np.ndarray]:
    parts = [(e.pixels, e.atoms_before, e.atoms_after) if e.pixels is not None
             else (np.zeros(0),) * 3 for e in edits]
    def cat(i: int, dtype: type) -> np.ndarray:
        return np.concatenate([p[i] for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)
    return {"edit_pix_ptr": _ptr([len(p[0]) for p in parts]), "edit_pixels": cat(0, np.int64),
            "edit_atoms_before": cat(1, np.int32), "edit_atoms_after": cat(2, np.int32)}


def _ptr(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


# ----------------------------------------------------------------------------- reading
_ARRAYS = {  # name: (allowed dtype kinds, ndim)
    "atom_map": ("ui", 2), "meta": ("u", 1), "node_owner": ("i", 1), "node_id": ("i", 1),
    "node_parent": ("i", 1), "node_cost": ("f", 1), "node_category": ("i", 1), "node_flags": ("u", 1),
    "node_color": ("u", 2), "child_ptr": ("i", 1), "child_ids": ("i", 1), "atom_ptr": ("i", 1),
    "atom_ids": ("i", 1), "edit_pix_ptr": ("i", 1), "edit_pixels": ("i", 1),
    "edit_atoms_before": ("i", 1), "edit_atoms_after": ("i", 1),
}
_OPTIONAL_ARRAYS = {  # since version 2
    "reject_ptr": ("i", 1), "reject_ids": ("i", 1), "descriptor_grid": ("f", 3),
    "suggest_node": ("i", 1), "suggest_category": ("i", 1), "suggest_confidence": ("f", 1),
}


def load_tree_file(path: Path) -> SavedTree:
    """Read and validate an annotation file; raise DataFormatError naming it when damaged,
    NewerFileError when a newer CutTree wrote it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{printable(str(path))}: cannot be read ({exc.strerror or exc})") from exc
    return decode_tree_file(raw, printable(str(path)))


def decode_tree_file(raw: bytes, name: str) -> SavedTree:
    archive, infos = _open_archive(raw, name)
    if "node_id.npy" in infos:                # the node count first: it bounds the meta JSON too
        _member_array(archive, infos, "node_id", name, header_only=True)
    meta = _read_meta(archive, infos, name)
    arrays = _read_arrays(archive, infos, name)
    arrays["meta"] = meta
    try:
        return _decode(arrays, name)
    except DataFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AssertionError, OverflowError) as exc:
        raise DataFormatError(f"{name}: inconsistent tree ({exc or type(exc).__name__})") from exc


def _open_archive(raw: bytes, name: str) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        return archive, {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise DataFormatError(f"{name}: not a CutTree annotation file ({exc})") from exc


def _read_meta(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], name: str) -> np.ndarray:
    """The meta array, read first: a newer file is refused before its other arrays are judged."""
    if "meta.npy" in infos and infos["meta.npy"].file_size > MAX_META_BYTES:
        raise DataFormatError(f"{name}: 'meta' would unpack to {infos['meta.npy'].file_size} bytes, too large")
    meta = _member_array(archive, infos, "meta", name)
    fields = Fields(parse_json(meta.tobytes(), f"{name} (meta)"), f"{name} (meta)")
    if fields.str("format") != FORMAT:
        raise fields.error(f"format is {fields.obj['format']!r}, not {FORMAT!r}")
    version = fields.int("version")
    if version > VERSION:
        raise NewerFileError(f"{name}: annotation file version {version} was written by a newer CutTree "
                             f"(this one reads up to {VERSION}); update CutTree to open it")
    return meta


def _read_arrays(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], name: str) -> dict[str, np.ndarray]:
    """Every array but meta; the optional ones (version 2) only when present."""
    return {key: _member_array(archive, infos, key, name) for key in {**_ARRAYS, **_OPTIONAL_ARRAYS}
            if key != "meta" and (key in _ARRAYS or f"{key}.npy" in infos)}


def _member_array(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], key: str, name: str,
                  header_only: bool = False) -> np.ndarray:
    """One `.npy` member, its header checked against the member's size (and MAX_NODES for node
    tables) before its data is read, so a lying header costs nothing (`header_only`: stop there)."""
    kinds, ndim = {**_ARRAYS, **_OPTIONAL_ARRAYS}[key]
    info = infos.get(f"{key}.npy")
    if info is None:
        raise DataFormatError(f"{name}: '{key}' is missing (truncated or not a CutTree annotation file)")
    if info.file_size > MAX_MEMBER_BYTES:
        raise DataFormatError(f"{name}: '{key}' would unpack to {info.file_size} bytes, too large")
    try:
        with archive.open(info) as member:
            shape, fortran, dtype = _npy_header(member)
            if dtype.kind not in kinds or len(shape) != ndim:
                raise DataFormatError(f"{name}: '{key}' has type {dtype} and {len(shape)} dimensions")
            count = int(np.prod(shape, dtype=object))
            if key in _NODE_TABLES and shape[0] > MAX_NODES + 1:
                raise DataFormatError(f"{name}: '{key}' lists {shape[0]} nodes, more than the {MAX_NODES} allowed")
            if count * dtype.itemsize > info.file_size - member.tell():
                raise DataFormatError(f"{name}: '{key}' claims {count} items but holds only "
                                      f"{info.file_size - member.tell()} bytes")
            if header_only:
                return np.zeros(0, dtype=dtype)
            flat = np.empty(count, dtype=dtype)
            if _read_into(member, memoryview(flat).cast("B")) != flat.nbytes:
                raise DataFormatError(f"{name}: '{key}' is truncated")
    except DataFormatError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError, zlib.error, NotImplementedError) as exc:
        raise DataFormatError(f"{name}: '{key}' cannot be read ({exc})") from exc
    return flat.reshape(shape, order="F" if fortran else "C")


def _read_into(member, buffer: memoryview) -> int:
    """Fill buffer from the member; the number of bytes read (short at the member's end)."""
    done = 0
    while done < len(buffer):
        got = member.readinto(buffer[done:])
        if not got:
            break
        done += got
    return done


def _npy_header(member) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from an `.npy` header; object dtypes (pickles) are refused."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"unknown .npy version {version}")
    if dtype.hasobject:
        raise ValueError("it holds Python objects")
    return shape, fortran, dtype


def _decode(a: dict[str, np.ndarray], name: str) -> SavedTree:
    meta = Fields(parse_json(a["meta"].tobytes(), f"{name} (meta)"), f"{name} (meta)")
    atom_map = a["atom_map"]
    if not (1 <= atom_map.shape[0] <= MAX_SIDE and 1 <= atom_map.shape[1] <= MAX_SIDE):
        raise meta.error(f"atom map shape {atom_map.shape} is out of range")
    atom_map = atom_map.astype(np.int32)
    n_atoms = int(atom_map.max()) + 1
    if atom_map.min() < 0:
        raise meta.error("atom map holds negative atoms")
    size = meta.list("image_size")
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE * 4 for v in size):
        raise meta.error(f"image_size {size!r} is not two positive integers")
    states = _node_states(a, meta, name)
    edits, done = _edits(a, meta, states, atom_map.size)
    if -1 not in states:
        raise meta.error("the tree has no nodes")
    nodes = states[-1]
    root = meta.int("root", lo=0)
    _check_structure(nodes, root, n_atoms, name)
    max_atoms = max([n_atoms] + [max(e.n_atoms) for e in edits])
    for table in list(states.values()):
        for node in table.values():
            if node.atoms.size and (node.atoms[0] < 0 or node.atoms[-1] >= max_atoms):
                raise meta.error(f"node {node.id} lists atoms out of range")
    tree = SegmentTree(atom_map, nodes, root, (size[0], size[1]))
    tree.next_id = max(tree.next_id, meta.int("next_id", lo=0))
    tree.granularity = _granularity(meta.obj.get("granularity"), meta)
    _check_partition(tree, np.bincount(atom_map.ravel(), minlength=n_atoms) > 0, meta)
    history = None
    if edits:
        history = History(tree)
        history.done, history.undone = edits[:done], edits[done:]
    _read_suggestions(a, meta, tree)
    extra = meta.dict("extra", default={}) if meta.has("extra") else {}
    return SavedTree(tree, history, extra)


def _read_suggestions(a: dict[str, np.ndarray], meta: Fields, tree: SegmentTree) -> None:
    """The tree's descriptor grid and suggestions (version 2), validated."""
    if "descriptor_grid" in a:
        source = meta.str("descriptor_source", max_len=256)
        grid = a["descriptor_grid"]
        if not np.isfinite(grid).all():
            raise meta.error("the descriptor grid holds values that are not finite")
        tree.descriptors = DescriptorGrid(grid, source)
    if "suggest_node" not in a:
        return
    nodes, categories, confidence = a["suggest_node"], a["suggest_category"], a.get("suggest_confidence")
    if confidence is None or not len(nodes) == len(categories) == len(confidence):
        raise meta.error("the suggestion arrays differ in length")
    if not np.all((confidence >= 0) & (confidence <= 1)):
        raise meta.error("a suggestion's confidence lies outside [0, 1]")
    for nid, category, conf in zip(nodes.tolist(), categories.tolist(), confidence.tolist()):
        if nid not in tree.nodes:
            raise meta.error(f"a suggestion names node {nid}, which the tree does not have")
        tree.suggestions[nid] = Suggestion(category, conf)


def _node_states(a: dict[str, np.ndarray], meta: Fields, name: str) -> dict[int, dict[int, Node]]:
    n = len(a["node_id"])
    for key in ("node_owner", "node_parent", "node_cost", "node_category", "node_flags"):
        if len(a[key]) != n:
            raise meta.error(f"'{key}' has {len(a[key])} entries, expected {n}")
    if a["node_color"].shape != (n, 3):
        raise meta.error("'node_color' does not match the node count")
    names = meta.list("names")
    if len(names) != n or not all(isinstance(s, str) for s in names):
        raise meta.error("'names' does not match the node count")
    children = _csr(a["child_ptr"], a["child_ids"], n, "children", meta)
    atoms = _csr(a["atom_ptr"], a["atom_ids"], n, "atoms", meta)
    rejected = (_csr(a["reject_ptr"], a["reject_ids"], n, "rejected suggestions", meta)
                if "reject_ptr" in a and "reject_ids" in a else [()] * n)
    states: dict[int, dict[int, Node]] = {}
    for i in range(n):
        flags = int(a["node_flags"][i])
        parent = int(a["node_parent"][i])
        node = Node(int(a["node_id"][i]), None if parent < 0 else parent, [int(c) for c in children[i]],
                    _frozen(atoms[i]), cost=float(a["node_cost"][i]), expanded=bool(flags & _EXPANDED),
                    category=int(a["node_category"][i]) if flags & _HAS_CATEGORY else None,
                    name=names[i], color=tuple(int(c) for c in a["node_color"][i]),
                    visible=bool(flags & _VISIBLE), ignored=bool(flags & _IGNORED),
                    rejected=tuple(int(c) for c in rejected[i]))
        table = states.setdefault(int(a["node_owner"][i]), {})
        if node.id < 0 or node.id in table:
            raise meta.error(f"node id {node.id} is negative or repeated")
        table[node.id] = node
    return states


def _frozen(atoms: np.ndarray) -> np.ndarray:
    """Sorted unique atoms (as the tree keeps them); files we wrote are already sorted."""
    out = atoms.astype(np.int32)
    if len(out) > 1 and not (out[1:] > out[:-1]).all():
        out = np.unique(out)
    out.flags.writeable = False
    return out


def _csr(ptr: np.ndarray, values: np.ndarray, n: int, what: str, meta: Fields) -> list[np.ndarray]:
    if len(ptr) != n + 1 or ptr[0] != 0 or ptr[-1] != len(values) or np.any(np.diff(ptr) < 0):
        raise meta.error(f"the {what} index is inconsistent")
    return np.split(values, ptr[1:-1]) if n else []


def _edits(a: dict[str, np.ndarray], meta: Fields, states: dict[int, dict[int, Node]],
           n_pixels: int) -> tuple[list[Edit], int]:
    records = meta.list("edits", max_len=MAX_HISTORY)
    done = meta.int("done", lo=0, hi=len(records))
    pixels = _csr(a["edit_pix_ptr"], a["edit_pixels"], len(records), "edit pixels", meta)
    if not len(a["edit_atoms_before"]) == len(a["edit_atoms_after"]) == len(a["edit_pixels"]):
        raise meta.error("edit pixel arrays differ in length")
    if len(a["edit_pixels"]) and (a["edit_pixels"].min() < 0 or a["edit_pixels"].max() >= n_pixels):
        raise meta.error("an edit changes pixels outside the image")
    edits, start = [], 0
    for i, record in enumerate(records):
        rec = Fields(record, f"{meta.where} edit {i}")
        before = dict(states.get(2 * i, {}))
        after = dict(states.get(2 * i + 1, {}))
        for key, table in (("absent_before", before), ("absent_after", after)):
            for nid in rec.list(key, default=[]):
                if isinstance(nid, bool) or not isinstance(nid, int):
                    raise rec.error(f"'{key}' holds {nid!r}, not a node id")
                table[nid] = None
        count = len(pixels[i])
        edit = Edit(rec.str("kind", max_len=64), before, after,
                    next_id=_pair(rec, "next_id"), n_atoms=_pair(rec, "n_atoms"))
        if rec.has("granularity"):
            pair = rec.list("granularity")
            if len(pair) != 2:
                raise rec.error("'granularity' must be a pair (before, after)")
            edit.granularity = (_granularity(pair[0], rec), _granularity(pair[1], rec))
        if rec.bool("has_pixels"):
            edit.pixels = a["edit_pixels"][start:start + count].copy()
            edit.atoms_before = a["edit_atoms_before"][start:start + count].copy()
            edit.atoms_after = a["edit_atoms_after"][start:start + count].copy()
        start += count
        edits.append(edit)
    return edits, done


def _granularity(value: Any, where: Fields) -> Optional[float]:
    """A τ from the file: a finite number, or null (never pruned as a whole)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise where.error(f"granularity {value!r} is not a number")
    return float(value)


def _pair(rec: Fields, key: str) -> tuple[int, int]:
    values = rec.list(key)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 31 for v in values):
        raise rec.error(f"'{key}' must be two non-negative integers")
    return values[0], values[1]


def _check_partition(tree: SegmentTree, present: np.ndarray, meta: Fields) -> None:
    """`SegmentTree.check_invariants`, with a bincount instead of `np.unique` over the atom map."""
    for node in tree.nodes.values():
        if node.children:
            parts = np.sort(np.concatenate([tree.nodes[c].atoms for c in node.children]))
            if not np.array_equal(parts, node.atoms):
                raise meta.error(f"node {node.id} is not exactly the union of its disjoint children")
    root_atoms = tree.nodes[tree.root].atoms
    covered = np.zeros(len(present), dtype=bool)
    covered[root_atoms] = True
    if (present & ~covered).any():
        raise meta.error("some pixels belong to no node")
    shown = np.concatenate([tree.nodes[n].atoms for n in tree.frontier()])
    if len(shown) != len(root_atoms) or not np.array_equal(np.sort(shown), root_atoms):
        raise meta.error("the shown regions do not partition the image")


def _check_structure(nodes: dict[int, Node], root: int, n_atoms: int, name: str) -> None:
    """Every node reachable once from the root through consistent parent/child links (no cycles)."""
    if root not in nodes or nodes[root].parent is not None:
        raise DataFormatError(f"{name}: root node {root} is missing or has a parent")
    seen, stack = {root}, [root]
    while stack:
        node = nodes[stack.pop()]
        for child in node.children:
            if child not in nodes or child in seen or nodes[child].parent != node.id:
                raise DataFormatError(f"{name}: node {node.id} has a missing, repeated or foreign child {child}")
            seen.add(child)
            stack.append(child)
    if len(seen) != len(nodes):
        raise DataFormatError(f"{name}: {len(nodes) - len(seen)} nodes are not reachable from the root")
    for node in nodes.values():
        if node.atoms.size and (node.atoms[0] < 0 or node.atoms[-1] >= n_atoms):
            raise DataFormatError(f"{name}: node {node.id} lists atoms outside the atom map")
