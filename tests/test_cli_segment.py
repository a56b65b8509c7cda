"""`python main.py segment` end to end on real images and a folder with a corrupt file."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def write_images(folder: Path) -> None:
    folder.mkdir()
    Image.fromarray(skimage.data.coffee()[::2, ::2].copy()).save(folder / "coffee.jpg")
    Image.fromarray(skimage.data.chelsea()[::2, ::2].copy()).save(folder / "chelsea.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole JPEG")


def test_segment_folder_writes_outputs_and_skips_the_corrupt_file(tmp_path):
    write_images(tmp_path / "in")
    result = run_cli("segment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--tokens", "24")
    assert result.returncode == 1, result.stderr
    assert "broken.jpg" in result.stderr and "2 of 3 images" in result.stderr
    for stem in ("coffee", "chelsea"):
        image = np.asarray(Image.open(tmp_path / "in" / (stem + (".jpg" if stem == "coffee" else ".png"))))
        labels = np.asarray(Image.open(tmp_path / "out" / f"{stem}_labels.png"))
        overlay = np.asarray(Image.open(tmp_path / "out" / f"{stem}_overlay.png"))
        assert labels.shape == image.shape[:2] and overlay.shape == image.shape
        assert len(np.unique(labels)) > 1 and not np.array_equal(overlay, image)
        coco = COCO(str(tmp_path / "out" / f"{stem}_coco.json"))
        anns = coco.loadAnns(coco.getAnnIds())
        assert sorted(a["id"] for a in anns) == list(range(1, len(anns) + 1))
        assert len(anns) == len(np.unique(labels))
        info = coco.loadImgs(1)[0]
        assert (info["height"], info["width"]) == labels.shape
        decoded = sorted((coco.annToMask(a).astype(bool) for a in anns), key=lambda m: m.sum())
        segments = sorted((labels == k for k in np.unique(labels)), key=lambda m: m.sum())
        for got, want, ann in zip(decoded, segments, sorted(anns, key=lambda a: a["area"])):
            assert np.array_equal(got, want)
            assert ann["area"] == want.sum() and ann["iscrowd"] == 0
            assert isinstance(ann["segmentation"]["counts"], str)
            x, y, w, h = ann["bbox"]
            assert [x, y, w, h] == list(mask_utils.toBbox(ann["segmentation"]))


def test_segment_single_file_succeeds_and_missing_input_fails(tmp_path):
    Image.fromarray(skimage.data.astronaut()[::4, ::4].copy()).save(tmp_path / "astronaut.png")
    ok = run_cli("segment", str(tmp_path / "astronaut.png"), "--out", str(tmp_path / "o"),
                 "--tokens", "16", "--tau", "0.6")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "o" / "astronaut_coco.json").read_text())["annotations"]
    missing = run_cli("segment", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o2"))
    assert missing.returncode == 1 and "nope.png" in missing.stderr
    bad_setting = run_cli("segment", str(tmp_path / "astronaut.png"), "--out", str(tmp_path / "o3"),
                          "--tau", "-1")
    assert bad_setting.returncode == 2 and "tau" in bad_setting.stderr
