"""COCO import on hostile input, into existing projects, and killed: one-line messages, bounded memory, all-or-nothing."""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import import_cmd
from core.coco_import import ImportFailed, import_coco
from core.export.coco import export_project_coco
from core.project import Project, ProjectError
from tests.coco_builders import png_with_header, write_instances

ROOT = Path(__file__).resolve().parents[1]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    import_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["import", *argv])
    code = args.handler(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_image(tmp_path: Path, file_name: str = "a.png", width: int = 32, height: int = 24, seg=None) -> Path:
    data = {"images": [{"id": 5, "file_name": file_name, "width": width, "height": height}],
            "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "iscrowd": 0,
                             "segmentation": seg or [[2, 2, 10, 2, 10, 10]]}],
            "categories": [{"id": 1, "name": "cat"}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    return path


def test_nothing_imported_exits_non_zero_and_leaves_nothing(tmp_path, capsys):
    path = one_image(tmp_path, "x" * 4000 + ".png")                   # a 4000-character file name
    code, out, err = run_cli([str(path), "--images", str(tmp_path), "--project", str(tmp_path / "p")], capsys)
    assert code == 1 and out == ""
    assert "longer than 255 bytes" in err and "coco.json: nothing was imported" in err
    assert all(len(line) < 400 for line in err.splitlines()) and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_compressed_rle_with_an_overlong_number_is_one_message(tmp_path):
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "a.png")
    # 768 = 24*32 pixels as one run, padded with zero groups: Python's big integers sum it right,
    # pycocotools' 64-bit decoder shifts past its word
    counts = "0" + chr(48 + 0x20) + chr(48 + (0x20 | 24)) + "".join(chr(48 + 0x20) for _ in range(12)) + "0"
    path = one_image(tmp_path, seg={"size": [24, 32], "counts": counts})
    result = import_coco(path, tmp_path, tmp_path / "p")
    assert result.images == 1 and result.annotations == 0
    assert len(result.problems) == 1 and "annotation id 1 segmentation: compressed RLE counts hold a number too large" \
        in result.problems[0]


def test_bomb_header_nul_bytes_and_symlink_loops_are_named_and_skipped(tmp_path):
    png_with_header(tmp_path / "bomb.png", 20000, 20000)
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "ok.png")
    os.symlink(tmp_path / "loop2.png", tmp_path / "loop1.png")
    os.symlink(tmp_path / "loop1.png", tmp_path / "loop2.png")
    names = ["bomb.png", "ok.png", "loop1.png", "bad\0name.png"]
    data = {"images": [{"id": i + 1, "file_name": n, "width": 32, "height": 24} for i, n in enumerate(names)],
            "annotations": [{"id": 10 + i, "image_id": i + 1, "category_id": 1, "segmentation": [[2, 2, 10, 2, 10, 10]]}
                            for i in range(4)],
            "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "coco.json").write_text(json.dumps(data))
    result = import_coco(tmp_path / "coco.json", tmp_path, tmp_path / "p")
    text = "\n".join(result.problems)
    assert "bomb.png: cannot read the image header" in text and "decompression bomb" in text.lower()
    assert "loop1.png: is a symlink loop" in text and "holds a NUL byte" in text
    assert all("\n" not in p for p in result.problems)
    project = Project.open(tmp_path / "p")
    assert sorted(e.path for e in project.images.values()) == ["../bomb.png", "../ok.png"]
    report = export_project_coco(project, tmp_path / "out.json")          # the project exports cleanly
    assert report.images == 2


def test_project_naming_a_file_is_refused(tmp_path, capsys):
    path = one_image(tmp_path)
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(ProjectError, match="names an existing file"):
        import_coco(path, tmp_path, tmp_path / "taken")
    code, _, err = run_cli([str(path), "--images", str(tmp_path), "--project", str(tmp_path / "taken")], capsys)
    assert code == 1 and err.count("\n") == 1 and "taken" in err


def test_declared_giant_image_is_refused_before_allocating(tmp_path):
    path = one_image(tmp_path, width=32768, height=32768)
    assert path.stat().st_size < 300
    started = time.perf_counter()
    with pytest.raises(ImportFailed, match="declares 32768x32768"):
        import_coco(path, tmp_path, tmp_path / "p")
    assert time.perf_counter() - started < 5


MEASURE = """
import json, resource, sys
try:      # forget the peak inherited from the forking parent (ru_maxrss keeps it across exec)
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
from core.coco_import import import_coco
result = import_coco(sys.argv[1], sys.argv[2], sys.argv[3])
try:
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"annotations": result.annotations, "peak_mb": peak}))
"""


def triangles_json(folder: Path, n: int = 2000, side: int = 4096) -> Path:
    """A 0.3 MB JSON: `n` small triangles on one `side` x `side` image."""
    rng = np.random.default_rng(1)
    anns = []
    for i in range(n):
        x, y = (float(v) for v in rng.integers(0, side - 20, 2))
        anns.append({"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": [[x, y, x + 12, y, x, y + 12]]})
    path = folder / "triangles.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "big.png", "width": side, "height": side}],
                                "annotations": anns, "categories": [{"id": 1, "name": "cat"}]},
                               separators=(",", ":")))
    return path


def test_many_annotations_on_a_large_image_stay_small(tmp_path):
    path = triangles_json(tmp_path)
    assert path.stat().st_size < 400_000
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(tmp_path), str(tmp_path / "p")],
                          capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["annotations"] == 2000
    # a full-size mask per annotation would be 2000 x 16 MiB; one label map and the tree: ~330 MB
    assert measured["peak_mb"] < 800, measured


def test_import_into_an_existing_project_adds_and_replaces_and_keeps_the_rest(tmp_path):
    first = write_instances(tmp_path / "one", 3)
    import_coco(first, tmp_path / "one" / "images", tmp_path / "p")
    project = Project.open(tmp_path / "p")
    kept = {e.path: project.load_tree(e.id).tree.frontier() for e in project.images.values()}
    untouched = next(e for e in project.images.values() if e.path.endswith("img002.png"))
    untouched_bytes = project.annotation_path(untouched.id).read_bytes()
    # a second file: img000 again (now with one region) and a new image
    data = json.loads(first.read_text())
    image0 = data["images"][0]
    new = {"id": 77, "file_name": "new.png", "width": 64, "height": 48}
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "one" / "images" / "new.png")
    second = {"images": [image0, new], "categories": data["categories"] + [{"id": 9, "name": "bird"}],
              "annotations": [{"id": 5, "image_id": image0["id"], "category_id": 9, "segmentation": [[1, 1, 30, 1, 30, 30]]},
                              {"id": 6, "image_id": 77, "category_id": 3, "segmentation": [[1, 1, 9, 1, 9, 9]]}]}
    (tmp_path / "second.json").write_text(json.dumps(second))
    result = import_coco(tmp_path / "second.json", tmp_path / "one" / "images", tmp_path / "p")
    assert result.images == 2 and result.replaced == 1 and result.annotations == 2
    project = Project.open(tmp_path / "p")
    assert len(project.images) == 4 and project.category(9).name == "bird"
    replaced = project.find_image(tmp_path / "one" / "images" / "img000.png")
    tree = project.load_tree(replaced.id).tree
    assert sorted(map(str, (tree.effective_category(n) for n in tree.frontier()))) == ["9", "None"]
    assert replaced.coco_ids == {tree.node_at(2, 20): 5} and tree.effective_category(tree.node_at(2, 20)) == 9
    assert project.annotation_path(untouched.id).read_bytes() == untouched_bytes
    assert project.load_tree(untouched.id).tree.frontier() == kept[untouched.path]
    leftovers = set(os.listdir(tmp_path / "p" / "annotations")) - {e.annotation.split("/")[1]
                                                                    for e in project.images.values()}
    assert not leftovers                                        # the replaced tree's old file is gone


KILLED = """
import sys
from core.coco_import import import_coco
print("ready", flush=True)
import_coco(sys.argv[1], sys.argv[2], sys.argv[3])
"""


def project_state(folder: Path) -> tuple:
    """project.json's content plus every listed tree's frontier, categories and atom map."""
    project = Project.open(folder)
    trees = []
    for entry in sorted(project.images.values(), key=lambda e: e.id):
        tree = project.load_tree(entry.id).tree
        trees.append((entry.id, entry.path, tuple(tree.frontier()),
                      tuple(tree.effective_category(n) for n in tree.frontier()), tree.atom_map.tobytes()))
    data = json.loads((folder / "project.json").read_text())
    for image in data["images"]:
        image.pop("annotation")                   # the file name alternates when an image is replaced
    return json.dumps(data, sort_keys=True), trees


def unlisted_files(folder: Path) -> int:
    """Annotation files on disk that project.json does not list (what a killed import leaves)."""
    listed = set()
    if (folder / "project.json").exists():
        listed = {e.annotation.split("/")[1] for e in Project.open(folder).images.values()}
    annotations = folder / "annotations"
    return len(set(os.listdir(annotations)) - listed) if annotations.is_dir() else 0


def kill_trials(tmp_path: Path, trials: int, seed: int, existing: bool) -> dict[str, int]:
    """Kill `import` at random moments; every survivor is the old project or the new, and a re-run is exact."""
    source = write_instances(tmp_path / "src", 30)
    images = tmp_path / "src" / "images"
    reference = tmp_path / "reference"
    if existing:
        import_coco(write_instances(tmp_path / "old", 30, per_image=1, name="old.json"), images, reference)
    started = time.perf_counter()
    import_coco(source, images, reference)
    duration = time.perf_counter() - started
    expected = project_state(reference)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(seed)
    outcome = {"old": 0, "new": 0, "interrupted": 0}
    for trial in range(trials):
        target = tmp_path / f"t{trial}"
        if existing:
            import_coco(tmp_path / "old" / "old.json", images, target)
        before = project_state(target) if existing else None
        child = subprocess.Popen([sys.executable, "-c", KILLED, str(source), str(images), str(target)],
                                 stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 1.5 * duration + 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait()
        outcome["interrupted"] += unlisted_files(target) > 0
        if (target / "project.json").exists():
            state = project_state(target)
            assert state in (before, expected)
            outcome["new" if state == expected else "old"] += 1
        else:
            assert not existing
            outcome["old"] += 1
        import_coco(source, images, target)                          # re-running repairs nothing: it redoes
        assert project_state(target) == expected
    return outcome


@pytest.mark.parametrize("existing", [False, True])
def test_killed_import_leaves_the_old_project_and_a_rerun_equals_an_uninterrupted_one(tmp_path, existing):
    outcome = kill_trials(tmp_path, 4, 11 + existing, existing)
    assert outcome["old"] + outcome["new"] == 4
