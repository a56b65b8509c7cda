"""Damaged, hostile and mismatched project files (issue 13): export never raises, the damaged file
is set aside and the user is told; newer or mismatched annotation files are refused in place."""
from __future__ import annotations

import io
import json
import resource
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import core.tree_file as tree_file
from core.atomic_io import npz_bytes
from core.cli import run as run_cli
from core.project import Project, RefusedFileError
from core.safe_json import DataFormatError
from core.tree import SegmentTree
from core.tree_file import NewerFileError, load_tree_file, tree_file_bytes
from tests.export_fixtures import hard_tree
from tests.test_project import make_project


def project_with_trees(tmp_path: Path) -> Project:
    """Two images of hard_tree()'s size, both annotated."""
    project = make_project(tmp_path)
    height, width = hard_tree().image_size
    for entry in project.images.values():
        entry.width, entry.height = width, height
    project.save()
    for image_id in project.images:
        project.save_tree(image_id, hard_tree())
    return project


def members(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rezipped(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def bad_deflate_block(raw: bytes, member: str = "atom_map.npy") -> bytes:
    """The file with the first deflate block of `member` given the reserved block type 3."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        info = archive.getinfo(member)
    offset = info.header_offset
    name_length, extra_length = struct.unpack("<HH", raw[offset + 26:offset + 30])
    data = offset + 30 + name_length + extra_length
    return raw[:data] + bytes([raw[data] | 0b110]) + raw[data + 1:]


def npy_claiming(items: int) -> bytes:
    """An .npy member whose header claims `items` int64 values, followed by 16 bytes."""
    header = repr({"descr": "<i8", "fortran_order": False, "shape": (items,)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)


def export(capsys: pytest.CaptureFixture, project: Project, out: Path) -> tuple[int, str, str]:
    code = run_cli(["export", str(project.folder), "--format", "coco", "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- damaged annotation files: set aside, the export goes on and says so ---------------------


def test_bad_deflate_block_is_set_aside_and_export_says_so(tmp_path: Path, capsys) -> None:
    project = project_with_trees(tmp_path)
    path = project.annotation_path(1)
    damaged = bad_deflate_block(path.read_bytes())
    path.write_bytes(damaged)
    with pytest.raises(DataFormatError, match="'atom_map' cannot be read .*invalid block type"):
        load_tree_file(path)
    code, out, err = export(capsys, project, tmp_path / "coco.json")
    assert code == 1 and "Traceback" not in err         # the README: non-zero when anything failed
    assert err.splitlines()[-1] == "error: 1 images were skipped because their annotation files could not be read"
    skipped = [line for line in out.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and path.name in skipped[0] and "kept as" in skipped[0]
    assert [p.read_bytes() for p in path.parent.glob(path.name + ".damaged-*")] == [damaged]
    assert len(json.loads((tmp_path / "coco.json").read_text())["images"]) == 1


def test_npy_header_claiming_2_to_the_40_items_is_refused_from_its_header(tmp_path: Path) -> None:
    files = members(tree_file_bytes(hard_tree()))
    files["child_ids.npy"] = npy_claiming(2 ** 40)
    path = tmp_path / "x.cuttree.npz"
    path.write_bytes(rezipped(files))
    with pytest.raises(DataFormatError, match=r"'child_ids' claims 1099511627776 items but holds only 16 bytes"):
        load_tree_file(path)


def test_five_million_node_table_is_refused_fast_and_small(tmp_path: Path) -> None:
    n = 5_000_000
    arrays = dict(tree_file.tree_arrays(hard_tree()))
    arrays.update(node_owner=np.full(n, -1, np.int32), node_id=np.arange(n, dtype=np.int64),
                  node_parent=np.zeros(n, np.int64), node_cost=np.zeros(n), node_category=np.zeros(n, np.int64),
                  node_flags=np.zeros(n, np.uint8), node_color=np.zeros((n, 3), np.uint8),
                  child_ptr=np.zeros(n + 1, np.int64), atom_ptr=np.zeros(n + 1, np.int64))
    meta = json.loads(arrays["meta"].tobytes())
    meta["names"] = [""] * n
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    path = tmp_path / "x.cuttree.npz"
    path.write_bytes(npz_bytes(arrays))
    del arrays, meta
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataFormatError, match="lists 5000000 nodes, more than the 250000 allowed"):
        load_tree_file(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300_000     # KB


# --- refused in place: newer format, another image's size ------------------------------------


def test_newer_annotation_file_is_refused_and_left_in_place(tmp_path: Path, capsys) -> None:
    project = project_with_trees(tmp_path)
    arrays = dict(tree_file.tree_arrays(hard_tree()))
    meta = {**json.loads(arrays["meta"].tobytes()), "version": 7}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays["something_new"] = np.zeros(3)
    del arrays["node_color"]                           # a newer layout: judged by its version, not its arrays
    path = project.annotation_path(2)
    newer = npz_bytes(arrays)
    path.write_bytes(newer)
    with pytest.raises(NewerFileError, match="version 7 was written by a newer CutTree"):
        load_tree_file(path)
    with pytest.raises(RefusedFileError, match="newer CutTree"):
        Project.open(project.folder).load_tree(2)
    code, out, _ = export(capsys, project, tmp_path / "coco.json")
    assert code == 1 and any("newer CutTree" in line for line in out.splitlines() if line.startswith("skipped:"))
    assert path.read_bytes() == newer and not list(path.parent.glob("*.damaged-*"))


def test_annotation_of_another_image_size_is_refused_not_exported(tmp_path: Path, capsys) -> None:
    project = project_with_trees(tmp_path)
    labels = np.zeros((10, 20), np.int32)
    labels[:, 10:] = 1
    project.save_tree(1, SegmentTree.flat(labels))     # 20x10, the image is 32x24 (hard_tree's size)
    path = project.annotation_path(1)
    kept = path.read_bytes()
    with pytest.raises(RefusedFileError, match=r"made for a 20x10 image, but image 'images/im0.png' is"):
        Project.open(project.folder).load_tree(1)
    code, out, _ = export(capsys, project, tmp_path / "coco.json")
    coco = json.loads((tmp_path / "coco.json").read_text())
    assert code == 1 and [image["file_name"] for image in coco["images"]] == ["im1.png"]    # relative to the image root (export decision 0204)
    assert any("20x10" in line for line in out.splitlines() if line.startswith("skipped:"))
    assert path.read_bytes() == kept


# --- project.json and image paths ---------------------------------------------------------------


def test_nul_byte_in_an_image_path_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    project = project_with_trees(tmp_path)
    data = json.loads((project.folder / "project.json").read_text())
    data["images"][0]["path"] = "images/im\u00000.png"
    (project.folder / "project.json").write_text(json.dumps(data))
    code, out, err = export(capsys, project, tmp_path / "coco.json")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "project.json images[0]" in err and "NUL byte" in err and "\\x00" in err


def test_image_that_is_a_symlink_loop_is_a_problem_not_a_crash(tmp_path: Path, capsys) -> None:
    project = project_with_trees(tmp_path)
    image = project.folder / project.images[1].path
    image.unlink()
    image.symlink_to(image)
    again = Project.open(project.folder)
    assert len(again.problems) == 1 and "images/im0.png" in again.problems[0]
    code, out, err = export(capsys, project, tmp_path / "coco.json")
    assert code == 0 and "Traceback" not in err
    assert len(json.loads((tmp_path / "coco.json").read_text())["images"]) == 2

