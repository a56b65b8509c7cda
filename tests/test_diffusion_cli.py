"""`main.py segment --encoder diffusion` end to end on a tiny SDXL-layout model folder."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tiny_models import tiny_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def photo(tmp_path) -> Path:
    """A 96x160 image with a bright disc on a gradient, saved as PNG."""
    yy, xx = np.mgrid[0:96, 0:160]
    rgb = np.stack([xx * 1.5, yy * 2.0, ((yy - 48) ** 2 + (xx - 100) ** 2 < 30 ** 2) * 220], axis=-1)
    path = tmp_path / "photo.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def check_outputs(out: Path, cache: Path) -> None:
    labels = np.asarray(Image.open(out / "photo_labels.png"))
    labels = np.asarray(Image.open(out / "photo_labels.png"))
    assert labels.shape == (96, 160)
    coco = json.loads((out / "photo_coco.json").read_text())
    assert coco["images"][0]["width"] == 160 and len(coco["annotations"]) >= 1
    assert list((cache / "features").glob("*.npz")), "features were not cached"


def test_segment_command_in_a_fresh_process(photo, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    result = subprocess.run([sys.executable, "main.py", "segment", str(photo), "--out", str(out),
                             "--encoder", "diffusion", "--model", str(tiny_model("sdxl")), "--device", "cpu",
                             "--cache-dir", str(cache)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "diffusion sdxl" in result.stderr
    check_outputs(out, cache)


def test_segment_command_with_attention_maps(photo, tmp_path, capfd):
    from main import main

    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main(["segment", str(photo), "--out", str(out), "--encoder", "diffusion", "--method", "walk",
                 "--model", str(tiny_model("sd1")), "--cache-dir", str(cache)]) == 0, capfd.readouterr().err
    check_outputs(out, cache)


def test_segment_command_reports_a_missing_model(photo, tmp_path, capfd):
    from main import main

    code = main(["segment", str(photo), "--out", str(tmp_path / "out"), "--encoder", "diffusion",
                 "--model", str(tmp_path / "no-such-model"), "--cache-dir", str(tmp_path / "cache")])
    err = capfd.readouterr().err
    assert code != 0
    assert "does not exist" in err and "Traceback" not in err
