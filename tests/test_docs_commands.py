"""Every command line in the README and the user guide runs, on tiny inputs in a temporary folder:
the headless ones through main.py as written, the window-opening ones up to a built window, dev.py's
up to the command it would run, the apt-get line against what the start-up check knows."""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import skimage.data
from PIL import Image

import main as entry
from core.project import Project
from tests.export_fixtures import CATEGORIES, hard_labels, hard_tree

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "docs" / "user_guide.md")
PROGRAMS = ("python main.py", "python3 main.py", "cuttree", "python3 dev.py", "python dev.py", "sudo apt-get")


def command_lines(text: str) -> list[str]:
    """The lines of ```bash blocks (comments dropped) and inline code spans that start a program."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        lines += [line.split(" #")[0].strip() for line in block.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    spans = (" ".join(span.split()) for span in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S)))
    return lines + [span for span in spans if span.split()[0] in ("python", "python3", "cuttree")]


ALL_COMMANDS = sorted({line for doc in DOCS for line in command_lines(doc.read_text(encoding="utf-8"))})


def test_the_docs_have_commands_and_only_known_programs():
    assert "python main.py photo.jpg folder/ project/" in ALL_COMMANDS
    assert len(ALL_COMMANDS) >= 12
    assert all(line.startswith(PROGRAMS) for line in ALL_COMMANDS), ALL_COMMANDS


def write_image(path: Path, name: str, side: int = 48) -> None:
    image = Image.fromarray(getattr(skimage.data, name)()[..., :3])
    image.thumbnail((side, side))
    image.save(path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """photo.jpg, folder/ (two images, one of them in project/), project/ (labelled), coco.json,
    and two-image BSDS500 and CamVid layouts at ../shared/data/ as the README names them."""
    top = tmp_path_factory.mktemp("docs")
    work = top / "work"
    (work / "folder").mkdir(parents=True)
    write_image(work / "photo.jpg", "astronaut")
    write_image(work / "folder" / "coffee.png", "coffee")
    Image.fromarray(np.full((*hard_labels().shape, 3), 120, np.uint8)).save(work / "folder" / "a.png")
    project = Project.create(work / "project", CATEGORIES)
    entry_ = project.add_image(work / "folder" / "a.png", 32, 24)
    project.save()
    project.save_tree(entry_.id, hard_tree())
    assert entry.main(["export", str(work / "project"), "--out", str(work / "coco.json")]) == 0
    bsds = top / "shared" / "data" / "bsds500"
    for split in ("images", "groundTruth"):
        (bsds / split / "val").mkdir(parents=True)
    for name in ("coffee", "chelsea"):
        write_image(bsds / "images" / "val" / f"{name}.jpg", name, side=40)
        height, width = np.asarray(Image.open(bsds / "images" / "val" / f"{name}.jpg")).shape[:2]
        human = np.ones((height, width), np.uint16)
        human[:, width // 2:] = 2
        cell = np.empty((1, 1), dtype=object)
        cell[0, 0] = {"Segmentation": human}
        scipy.io.savemat(bsds / "groundTruth" / "val" / f"{name}.mat", {"groundTruth": cell})
    camvid = top / "shared" / "data" / "camvid"
    (camvid / "valannot").mkdir(parents=True)
    (camvid / "val").mkdir()
    for name in ("coffee", "chelsea"):
        write_image(camvid / "val" / f"{name}.png", name, side=40)
        height, width = np.asarray(Image.open(camvid / "val" / f"{name}.png")).shape[:2]
        classes = np.full((height, width), 3, np.uint8)          # road, sky above
        classes[: height // 3] = 0
        Image.fromarray(classes).save(camvid / "valannot" / f"{name}.png")
    return work


def open_window_instead(qtbot, opened: list):
    """A stand-in for gui.app.run: build the real window on argv, record what it opened, close it."""
    from gui.app import build_window

    def run(argv: list[str]) -> int:
        window = build_window(argv)
        qtbot.addWidget(window)
        opened.append((list(argv), [d.name for d in window.docs], window.project))
        window.session.cancel_segmentation()
        return 0
    return run


def run_main_py(args: list[str], qtbot, monkeypatch, opened: list) -> int:
    monkeypatch.setattr("gui.app.run", open_window_instead(qtbot, opened))
    return entry.main(args)


@pytest.mark.parametrize("line", ALL_COMMANDS)
def test_each_documented_command_runs(line, workspace, qtbot, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    words = shlex.split(line)
    opened: list = []
    if words[0] == "sudo":
        from gui.xcb_check import XCB_PACKAGES
        assert words[1:3] == ["apt-get", "install"] and tuple(words[3:]) == XCB_PACKAGES
        return
    if "dev.py" in words[1:2]:
        import dev
        commands: list = []
        monkeypatch.setattr(dev, "ensure_environment", lambda: Path(sys.executable))
        monkeypatch.setattr(dev.subprocess, "run", lambda command, cwd: commands.append(command) or
                            type("Done", (), {"returncode": 0}))
        assert dev.main(words[2:]) == 0
        command = commands[0]
        if words[2] == "test":       # the whole suite, from inside it: only what would run is checked
            assert command[1:3] == ["-m", "pytest"]
            return
        assert Path(command[1]) == ROOT / "main.py"
        words = ["python", "main.py", *command[2:]]
    args = words[1:] if words[0] == "cuttree" else words[2:]
    try:
        code = run_main_py(args, qtbot, monkeypatch, opened)
    except SystemExit as done:          # --help
        code = done.code
    assert code == 0, capsys.readouterr().err
    if not args or not (args[0] in entry_commands() or args[0].startswith("-")):
        assert opened, "the window was not opened"
        check_window(args, *opened[0][1:])


def entry_commands() -> tuple[str, ...]:
    from core.cli import COMMANDS
    return COMMANDS


def check_window(args: list[str], names: list[str], project) -> None:
    """The window opened the samples (no argument) or exactly what was named."""
    if not args:
        assert names == ["astronaut (sample)", "coffee (sample)", "chelsea (sample)"]
        return
    bare = {Path(name).name for name in names}        # the file list may name a folder too
    assert len(names) == 3 and {"photo.jpg", "coffee.png"} <= bare, names   # a.png once
    assert any(name.endswith("a.png") for name in names)
    assert project is not None and project.folder.name == "project"


def test_a_word_that_is_neither_command_nor_path_is_named(capsys):
    assert entry.main(["segmnt", "photo.jpg"]) == 2
    assert "'segmnt' is neither a command (segment, export, import, evaluate, propagate)" in capsys.readouterr().err


def test_the_decision_index_lists_every_note_and_its_status():
    folder = ROOT / "docs" / "decisions"
    index = (folder / "README.md").read_text(encoding="utf-8")
    for note in sorted(folder.glob("[0-9][0-9][0-9][0-9]-*.md")):
        assert f"]({note.name})" in index, f"docs/decisions/README.md does not list {note.name}"
        status = next(line for line in note.read_text(encoding="utf-8").splitlines() if line.startswith("Status:"))
        if "superseded by" in status.lower():
            assert f"superseded by {status.lower().split('superseded by')[1].split()[0]}" in index.lower()
