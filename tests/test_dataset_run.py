"""`segment --project`: dataset runs on the local and Ray engines, resumable, exact, fault tolerant."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.cli import run as cli
from core.dataset_run import RunOptions, run_dataset
from core.errors import CutTreeError
from core.engines import ClusterOptions, WorkerOptions
from core.engines.ray_engine import MAX_DEATHS
from core.image_sources import collect_sources
from core.project import Project
from core.run_journal import JOURNAL_FILE, JournalRecord, ProjectLock, RunJournal
from core.settings import Settings
from core.tree_file import tree_arrays
from tests.dataset_hooks import killing_factory
from tests.tiny_models import tiny_model

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "coins", "moon", "page", "text",
          "brick", "immunohistochemistry", "cat")
CLASSIC = ["--tokens", "12"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A dozen real photos (skimage's samples, colour and grey) at a quarter of their size."""
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        image = getattr(skimage.data, name)()[::4, ::4]
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def local_project(photos, tmp_path_factory) -> Path:
    """The reference: every photo segmented by the local engine, uninterrupted."""
    folder = tmp_path_factory.mktemp("reference") / "project"
    assert cli(["segment", str(photos), "--project", str(folder), *CLASSIC]) == 0
    return folder


def trees(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """Image path -> the arrays of its tree file, for every image of the project (checked once each)."""
    project = Project.open(folder)
    paths = [e.path for e in project.images.values()]
    assert len(paths) == len(set(paths)), "an image is in the project twice"
    out = {}
    for entry in project.images.values():
        saved = project.load_tree(entry.id)
        assert saved is not None, f"{entry.path} has no tree"
        assert (entry.height, entry.width) == saved.tree.image_size
        out[Path(entry.path).name] = tree_arrays(saved.tree)
    return out


def assert_same_trees(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        for key in a[name]:
            assert np.array_equal(a[name][key], b[name][key]), f"{name}: {key} differs"


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, **kwargs)


# ----------------------------------------------------------------------------- local engine
def test_local_project_is_complete_and_a_second_run_skips_it(photos, local_project, capsys):
    assert sorted(trees(local_project)) == sorted(f"{n}.png" for n in PHOTOS)
    stamps = {p: p.stat().st_mtime_ns for p in (local_project / "annotations").iterdir()}
    assert cli(["segment", str(photos), "--project", str(local_project), *CLASSIC]) == 0
    assert "(12 already there)" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (local_project / "annotations").iterdir()} == stamps
    assert (local_project / JOURNAL_FILE).read_text() == ""       # compacted: nothing failed


def test_redo_segments_again_and_out_writes_the_per_image_files(photos, local_project, tmp_path):
    project = tmp_path / "p"
    one = str(photos / "coffee.png")
    assert cli(["segment", one, "--project", str(project), *CLASSIC]) == 0
    tree_file = next((project / "annotations").iterdir())
    before = tree_file.stat().st_mtime_ns
    assert cli(["segment", one, "--project", str(project), "--redo", "--out", str(tmp_path / "out"), *CLASSIC]) == 0
    assert tree_file.stat().st_mtime_ns != before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "coffee_coco.json", "coffee_labels.png", "coffee_overlay.png"]
    assert json.loads((tmp_path / "out" / "coffee_coco.json").read_text())["images"][0]["file_name"] == "coffee.png"
    assert_same_trees(trees(project), {"coffee.png": trees(local_project)["coffee.png"]})


def test_corrupt_image_is_listed_failed_and_retried_only_when_asked(photos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("coffee", "chelsea"):
        (folder / f"{name}.png").write_bytes((photos / f"{name}.png").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    project = tmp_path / "p"
    first = run_cli("segment", str(folder), "--project", str(project), *CLASSIC)
    assert first.returncode == 1
    assert "broken.png" in first.stderr and "not segmented" in first.stderr and "Traceback" not in first.stderr
    assert sorted(trees(project)) == ["chelsea.png", "coffee.png"]
    again = run_cli("segment", str(folder), "--project", str(project), *CLASSIC)
    assert again.returncode == 1 and "--retry-failed" in again.stderr       # not retried by itself
    (folder / "broken.png").write_bytes((photos / "cat.png").read_bytes())  # the user fixes it
    retried = run_cli("segment", str(folder), "--project", str(project), "--retry-failed", *CLASSIC)
    assert retried.returncode == 0, retried.stderr
    assert sorted(trees(project)) == ["broken.png", "chelsea.png", "coffee.png"]


def test_manifest_with_relative_paths_comments_and_file_uris(photos, local_project, tmp_path):
    manifest = tmp_path / "list.txt"
    rel = os.path.relpath(photos / "camera.png", tmp_path)
    manifest.write_text(f"# three images\n{rel}\n\n{(photos / 'moon.png').as_uri()}\n{photos / 'page.png'}\n")
    sources = collect_sources([manifest])
    assert sources[1].startswith("file://") and len(sources) == 3
    assert cli(["segment", str(manifest), "--project", str(tmp_path / "p"), *CLASSIC]) == 0
    project = Project.open(tmp_path / "p")
    assert (photos / "moon.png").as_uri() in [e.path for e in project.images.values()]
    reference = trees(local_project)
    assert_same_trees(trees(tmp_path / "p"), {n: reference[n] for n in ("camera.png", "moon.png", "page.png")})


def test_missing_manifest_and_no_target_are_one_line_errors(tmp_path, capsys):
    assert cli(["segment", str(tmp_path / "nope.txt"), "--project", str(tmp_path / "p")]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert cli(["segment", str(tmp_path)]) == 2
    assert "--project" in capsys.readouterr().err


def test_a_second_run_on_a_locked_project_is_refused(photos, tmp_path, capsys):
    project = tmp_path / "p"
    with ProjectLock(project):
        code = cli(["segment", str(photos / "coffee.png"), "--project", str(project), *CLASSIC])
    err = capsys.readouterr().err
    assert code == 2 and "is being written by a `cuttree segment` run" in err and f"pid {os.getpid()}" in err
    assert not (project / "annotations").exists()
    assert cli(["segment", str(photos / "coffee.png"), "--project", str(project), *CLASSIC]) == 0


def test_journal_ignores_a_torn_line_and_keeps_the_latest_outcome(tmp_path):
    journal = RunJournal(tmp_path)
    journal.append(JournalRecord("a.png", False, message="cannot read a.png"))
    journal.append(JournalRecord("b.png", True, 10, 20))
    journal.close()
    with open(tmp_path / JOURNAL_FILE, "a") as handle:
        handle.write('{"key": "c.png", "sta')                 # a kill mid-append
    journal = RunJournal(tmp_path)
    journal.append(JournalRecord("a.png", True, 3, 4))
    latest = journal.replay()
    assert list(latest) == ["b.png", "a.png"] and latest["a.png"].ok and latest["b.png"].width == 10


def test_ray_missing_says_how_to_install(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = cli(["segment", str(photos / "coffee.png"), "--project", str(tmp_path / "p"), "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'cuttree[cluster]'" in err and "Traceback" not in err


def test_a_model_that_cannot_load_stops_the_run_without_failing_every_image(photos, tmp_path, capsys):
    project = tmp_path / "p"
    code = cli(["segment", str(photos), "--project", str(project), "--encoder", "diffusion",
                "--model", str(tmp_path / "no-such-model"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "no-such-model" in err and "Traceback" not in err
    assert (project / JOURNAL_FILE).read_text() == ""        # no image was recorded as failed


# ----------------------------------------------------------------------------- Ray engine
def ray_options(project: Path, **cluster) -> RunOptions:
    return RunOptions(project=project, engine="ray", progress=False,
                      cluster=ClusterOptions(**{"workers": 2, "batch_size": 2, **cluster}))


def test_ray_project_equals_the_local_one(ray_address, photos, local_project, tmp_path):
    settings = Settings(classic_tokens=12)
    options = ray_options(tmp_path / "p")
    options.out = tmp_path / "out"
    summary = run_dataset(collect_sources([photos]), settings, options)
    assert summary.segmented == len(PHOTOS) and not summary.failed
    assert sorted(p.name for p in options.out.iterdir()) == sorted(
        f"{n}{suffix}" for n in PHOTOS for suffix in ("_coco.json", "_labels.png", "_overlay.png"))
    assert sum(w.images for w in summary.workers.values()) == len(PHOTOS)   # one worker may start first and do all
    assert_same_trees(trees(tmp_path / "p"), trees(local_project))


def test_ray_equals_local_with_a_tiny_diffusion_model(ray_address, photos, tmp_path):
    settings = Settings(encoder="diffusion", model=str(tiny_model("sd1")), device="cpu",
                        cache_dir=str(tmp_path / "cache"))
    sources = collect_sources([photos / "coffee.png", photos / "camera.png", photos / "cat.png"])
    local = run_dataset(sources, settings, RunOptions(project=tmp_path / "local", progress=False, threads=1))
    remote = ray_options(tmp_path / "ray", workers=1)
    remote.threads = 1                          # equal threads: equal float sums (ThreadLimit)
    remote = run_dataset(sources, settings.replace(cache_dir=str(tmp_path / "cache2")), remote)
    assert local.segmented == remote.segmented == 3
    assert_same_trees(trees(tmp_path / "ray"), trees(tmp_path / "local"))


def test_ray_run_stops_with_the_message_of_a_model_that_cannot_load(ray_address, photos, tmp_path):
    settings = Settings(encoder="diffusion", model=str(tmp_path / "no-such-model"), cache_dir=str(tmp_path / "c"))
    with pytest.raises(CutTreeError, match="no-such-model") as raised:
        run_dataset(collect_sources([photos / "coffee.png"]), settings, ray_options(tmp_path / "p", workers=1))
    assert "Traceback" not in str(raised.value) and len(str(raised.value).splitlines()) == 1


def test_killed_workers_are_restarted_and_an_image_that_always_kills_fails(ray_address, photos, local_project,
                                                                          tmp_path):
    """One image kills its worker once (the retry succeeds), one kills every worker that tries it."""
    once, always = np.asarray(Image.open(photos / "rocket.png")), np.asarray(Image.open(photos / "coins.png"))
    shapes = [np.asarray(Image.open(photos / f"{n}.png")).shape[:2] for n in PHOTOS]
    assert shapes.count(once.shape[:2]) == shapes.count(always.shape[:2]) == 1     # the hook's key
    marker = tmp_path / "killed-once"
    hook = killing_factory({once.shape[:2]: str(marker), always.shape[:2]: None})
    settings = Settings(classic_tokens=12)
    worker = WorkerOptions(settings.to_dict(), make_segmenter=hook)
    summary = run_dataset(collect_sources([photos]), settings, ray_options(tmp_path / "p"), worker=worker)
    assert marker.exists(), "the hook never killed a worker"
    assert list(summary.failed) == [str(photos / "coins.png")]
    assert f"died each of the {MAX_DEATHS} times" in summary.failed[str(photos / "coins.png")]
    assert len(summary.workers) > 2                   # restarted actors show up as new workers
    reference = trees(local_project)
    del reference["coins.png"]
    assert_same_trees(trees(tmp_path / "p"), reference)
    journal = RunJournal(tmp_path / "p").replay()
    assert [k for k, r in journal.items() if not r.ok] == [os.path.relpath(photos / "coins.png", tmp_path / "p")]


def test_driver_killed_mid_run_resumes_to_every_image_once(ray_address, photos, local_project, tmp_path):
    project = tmp_path / "p"
    command = [sys.executable, str(ROOT / "main.py"), "segment", str(photos), "--project", str(project),
               "--engine", "ray", "--address", ray_address, "--workers", "1", *CLASSIC]
    driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = project / JOURNAL_FILE
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        if journal.is_file() and journal.read_text().count('"done"') >= 3:
            break
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    done_at_kill = journal.read_text().count('"done"')
    assert 3 <= done_at_kill < len(PHOTOS), "the driver was not killed mid-run"
    resumed = run_cli(*command[2:])
    assert resumed.returncode == 0, resumed.stderr
    assert f"({done_at_kill} already there)" in resumed.stderr
    assert_same_trees(trees(project), trees(local_project))


def test_local_run_killed_mid_image_resumes_to_every_image_once(photos, local_project, tmp_path):
    """The local engine's worker is the driver: the hook SIGKILLs it while it encodes the rocket."""
    project = tmp_path / "p"
    script = (
        "import sys; from pathlib import Path; import numpy as np; from PIL import Image\n"
        "from core.dataset_run import RunOptions, run_dataset\n"
        "from core.engines import WorkerOptions\n"
        "from core.image_sources import collect_sources\n"
        "from core.settings import Settings\n"
        "from tests.dataset_hooks import killing_factory\n"
        "photos, project = Path(sys.argv[1]), Path(sys.argv[2])\n"
        "victim = np.asarray(Image.open(photos / 'rocket.png')).shape[:2]\n"
        "settings = Settings(classic_tokens=12)\n"
        "worker = WorkerOptions(settings.to_dict(), make_segmenter=killing_factory({victim: None}))\n"
        "run_dataset(collect_sources([photos]), settings, RunOptions(project=project, progress=False), worker=worker)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(photos), str(project)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done_at_kill = (project / JOURNAL_FILE).read_text().count('"done"')
    assert 0 < done_at_kill <= sorted(PHOTOS).index("rocket")     # folders are listed in name order
    resumed = run_cli("segment", str(photos), "--project", str(project), *CLASSIC)
    assert resumed.returncode == 0 and f"({done_at_kill} already there)" in resumed.stderr, resumed.stderr
    assert_same_trees(trees(project), trees(local_project))
