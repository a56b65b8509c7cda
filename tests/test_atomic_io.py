"""Atomic writes: content replaced whole, no debris on failure, and SIGKILL mid-write never tears a file."""
from __future__ import annotations

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

from core.atomic_io import (atomic_write_bytes, atomic_write_json, atomic_write_npz, atomic_write_png,
                            replace_folder, staging_folder)

ROOT = Path(__file__).resolve().parents[1]

WRITER = """
import sys
from core.atomic_io import atomic_write_bytes
path = sys.argv[1]
contents = [bytes([65 + i]) * (3_000_000 + 1_000_000 * i) for i in range(3)]
print("ready", flush=True)
i = 0
while True:
    atomic_write_bytes(path, contents[i % 3])
    i += 1
"""


def test_writes_replace_the_whole_content(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(path, b"x" * 1000)
    atomic_write_bytes(path, b"short")
    assert path.read_bytes() == b"short"
    assert os.listdir(path.parent) == ["f.bin"]                     # no temporary file left


def test_json_png_npz_round_trip(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"a": [1, 2]})
    assert (tmp_path / "a.json").read_text().strip() == '{"a": [1, 2]}'
    image = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    atomic_write_png(tmp_path / "a.png", image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), image)
    atomic_write_npz(tmp_path / "a.npz", {"m": image})
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert np.array_equal(data["m"], image)


def test_failed_write_keeps_the_old_file_and_leaves_no_debris(tmp_path):
    path = tmp_path / "f.json"
    atomic_write_json(path, {"v": 1})
    with pytest.raises(ValueError):
        atomic_write_json(path, {"v": float("nan")})                 # refused before touching anything
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")                        # type: ignore[arg-type]
    assert path.read_text().strip() == '{"v": 1}'
    assert os.listdir(tmp_path) == ["f.json"]


def test_killed_writer_leaves_old_or_new_content_never_torn(tmp_path):
    path = tmp_path / "target.bin"
    valid = {bytes([65 + i]) * (3_000_000 + 1_000_000 * i) for i in range(3)}
    atomic_write_bytes(path, b"A" * 3_000_000)
    rng = random.Random(5)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seen = set()
    for _ in range(30):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        child.wait()
        content = path.read_bytes()
        assert content in valid
        seen.add(content[:1])
    interrupted = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert interrupted, "no kill landed in the middle of a write; the test proved nothing"
    assert len(seen) >= 2                                           # writes did complete in between


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_files_and_folders_get_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"a": 1})
        atomic_write_png(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
        staged = staging_folder(tmp_path / "set")
        (staged / "x.txt").write_text("x")
        replace_folder(staged, tmp_path / "set")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.json").st_mode & 0o777 == mode
    assert os.stat(tmp_path / "a.png").st_mode & 0o777 == mode
    assert os.stat(tmp_path / "set").st_mode & 0o777 == mode | (mode & 0o444) >> 2   # r -> x on folders


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_can_read_what_we_write():
    import tempfile
    folder = Path(tempfile.mkdtemp())
    try:
        os.chmod(folder, 0o755)
        old = os.umask(0o022)
        try:
            atomic_write_json(folder / "export.json", {"ok": True})
        finally:
            os.umask(old)
        read = subprocess.run([sys.executable, "-c", f"print(open({str(folder / 'export.json')!r}).read())"],
                              capture_output=True, text=True, user=65534, group=65534)
        assert read.returncode == 0 and '"ok": true' in read.stdout, read.stderr
    finally:
        import shutil
        shutil.rmtree(folder)


def test_replace_folder_swaps_a_whole_file_set(tmp_path):
    target = tmp_path / "pngs"
    for version in ("old", "new"):
        staged = staging_folder(target)
        for i in range(3):
            (staged / f"{i}.txt").write_text(version)
        replace_folder(staged, target)
    assert sorted(os.listdir(target)) == ["0.txt", "1.txt", "2.txt"]
    assert {(target / n).read_text() for n in os.listdir(target)} == {"new"}
    assert os.listdir(tmp_path) == ["pngs"]                       # the old set is gone, no staging left
