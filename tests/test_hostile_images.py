"""Hostile, damaged and huge image files (issue 13): each gives one line naming the file and what is
wrong, the rest of a `segment` batch goes on, and decoding stays within its memory budget."""
from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

import core.image_io as image_io
from core.cli import run as run_cli
from core.errors import ImageLoadError
from core.image_io import image_size, load_image, load_image_downscaled, load_working_image
from core.pipeline import Segmenter
from core.settings import Settings
from tests.hostile_inputs import (bomb_png, float_tiff_with_inf, lying_tiff, short_ihdr_png,
                                  striped_bomb_png, ztxt_png)

ROOT = Path(__file__).resolve().parents[1]


def refused(path: Path, pattern: str, read=load_image) -> str:
    """The one-line message `read(path)` fails with, checked to name the file and match `pattern`."""
    with pytest.raises(ImageLoadError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"cannot read {path}: ") or "\\n" in message, message
    assert "\n" not in message and re.search(pattern, message), message
    return message


def good_image(folder: Path, name: str = "good.png") -> Path:
    path = folder / name
    Image.fromarray(skimage.data.astronaut()[::8, ::8].copy()).save(path)
    return path


def segment(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[str]]:
    """Run `segment` in this process; (exit code, stderr lines)."""
    code = run_cli(["segment", *args, "--tokens", "8"])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# --- damaged headers and chunks ------------------------------------------------------------------


def test_huge_ztxt_chunk_is_refused_in_one_line(tmp_path: Path) -> None:
    refused(ztxt_png(tmp_path / "ztxt.png"), "text \\(metadata\\) chunk is larger")


def test_nine_byte_ihdr_is_refused_in_one_line(tmp_path: Path) -> None:
    path = short_ihdr_png(tmp_path / "ihdr.png")
    refused(path, "IHDR")
    refused(path, "IHDR", image_size)


def test_float_tiff_with_inf_is_stretched_over_its_finite_values(tmp_path: Path) -> None:
    path, ramp = float_tiff_with_inf(tmp_path / "inf.tif")
    image = load_image(path)
    low = float(ramp.ravel()[1])                          # the smallest finite value ([0, 0] is +inf)
    expected = (ramp.astype(np.float64) - low) / (1 - low) * 255
    expected[0, 0] = 255                                  # +inf shows white
    assert np.abs(image[..., 0] - expected).max() <= 0.5 + 1e-6
    assert image[0, 1, 0] == 0 and image[-1, -1, 0] == 255
    assert (image[..., 0] == image[..., 2]).all()


def test_fifo_is_refused_as_a_named_pipe(tmp_path: Path) -> None:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    refused(path, "named pipe")           # and does not block reading it


def test_dev_zero_is_refused_as_a_device() -> None:
    refused(Path("/dev/zero"), "it is a device")


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    refused(tmp_path / "a.png", "symbolic links")


def test_newline_in_a_file_name_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "two\nlines.png"
    path.write_bytes(b"not an image")
    message = refused(path, "not a JPEG")
    assert "two\\nlines.png" in message


# --- bombs: refused from the size that would be decoded, before decoding ----------------------


@pytest.mark.parametrize("build", [
    lambda d: striped_bomb_png(d / "ramp20k.png", 20000, 20000),
    lambda d: bomb_png(d / "zeros31k.png", 31000, 31000),
    lambda d: lying_tiff(d / "claims05.tif", 25000, 20000),
    lambda d: lying_tiff(d / "claims09.tif", 30000, 30000),
], ids=["png-20000-ramp", "png-31000-zeros", "tiff-0.5-gigapixel", "tiff-0.9-gigapixel"])
def test_bomb_is_refused_before_decoding(tmp_path: Path, build) -> None:
    path = build(tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for read in (load_image, lambda p: load_image_downscaled(p, 2048)):
        refused(path, r"would need \d+\.\d GB, more than the", read)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000   # KB: nothing decoded
    assert image_size(path)[0] >= 20000          # the header alone is still readable


def test_budget_is_checked_on_the_jpeg_draft_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.jpg"
    Image.fromarray(skimage.data.astronaut()).resize((2000, 1500)).save(path, quality=90)
    monkeypatch.setattr(image_io, "MAX_DECODE_BYTES", 15_000_000)     # 3 Mpx x 11 B does not fit
    refused(path, "would need")
    image, full = load_working_image(path, 500)                     # a 1/2-scale draft does
    assert image.shape == (375, 500, 3) and full == (1500, 2000)


def test_working_image_of_a_png_is_reduced_and_knows_its_full_size(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    picture = np.repeat(np.repeat(skimage.data.astronaut()[::16, ::16], 12, 0), 12, 1)   # 384x384
    Image.fromarray(picture[:, :300].copy()).save(path)
    image, full = load_working_image(path, 100)
    assert image.shape == (100, 78, 3) and full == (384, 300)
    assert load_working_image(path, None)[1] == (384, 300)


def test_working_resolution_tree_exports_at_full_size(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(skimage.data.astronaut()).save(path)             # 512x512
    segmenter = Segmenter(Settings(classic_tokens=8, max_mask_side=128))
    image, full = load_working_image(path, segmenter.settings.max_mask_side)
    tree = segmenter.cut(image, segmenter.encode(image), full_size=full)
    assert tree.shape == (128, 128) and tree.image_size == (512, 512)
    from core.render import frontier_label_image
    labels = frontier_label_image(tree)
    assert labels.shape == (512, 512) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels[2::4, 2::4], tree.frontier_labels()[0])


# --- the `segment` batch ------------------------------------------------------------------------


def test_batch_goes_on_after_each_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad = [ztxt_png(inputs / "a_ztxt.png"), short_ihdr_png(inputs / "b_ihdr.png"),
           lying_tiff(inputs / "c_claims.tif", 30000, 30000), inputs / "d_pipe.png"]
    os.mkfifo(bad[-1])
    (inputs / "e_new\nline.png").write_bytes(b"junk")
    good = good_image(inputs, "z_good.png")
    code, lines = segment(capsys, str(inputs), "--out", str(tmp_path / "out"))
    assert code == 1
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 5 and not any("Traceback" in line for line in lines)
    for path, line in zip(bad, errors):
        assert f"cannot read {path}: " in line
    assert "e_new\\nline.png" in errors[4]
    assert "1 of 6 images segmented" in lines[-1] and "5 failed" in lines[-1]
    assert (tmp_path / "out" / f"{good.stem}_labels.png").is_file()


def test_out_naming_an_existing_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = good_image(tmp_path)
    taken = tmp_path / "results"
    taken.write_text("my notes")
    code, lines = segment(capsys, str(image), "--out", str(taken))
    assert code == 2 and lines == [f"error: cannot use {taken} as the output folder: it is a file, not a folder"]
    assert taken.read_text() == "my notes"


def test_write_failure_leaves_nothing_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import core.atomic_io
    first, second = good_image(tmp_path, "first.png"), good_image(tmp_path, "second.png")
    real = os.fsync

    def disk_full_once(fd: int) -> None:       # the first image's second output hits a full disk
        if ".first_overlay.png." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(core.atomic_io.os, "fsync", disk_full_once)
    code, lines = segment(capsys, str(first), str(second), "--out", str(tmp_path / "out"))
    assert code == 1
    assert [line for line in lines if line.startswith("error:")] == [
        f"error: cannot write {tmp_path / 'out' / 'first_overlay.png'}: No space left on device "
        f"(nothing was kept for first.png)"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "second_coco.json", "second_labels.png", "second_overlay.png"]


def test_full_disk_in_a_real_process_leaves_no_empty_file(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past 40 KB, as a full disk does (EFBIG)."""
    image = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(image)

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "segment", str(image), "--out", str(out),
                             "--tokens", "8"], capture_output=True, text=True, cwd=ROOT, timeout=600,
                            preexec_fn=small_disk, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"error: cannot write {out / 'noise_overlay.png'}: File too large" in result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("size", [(45, 70), (33, 31), (120, 17), (24, 30)])
def test_regions_measured_on_the_small_map_equal_the_full_size_ones(size: tuple[int, int]) -> None:
    """Areas and boxes of an upsampled export come from the atom map; they must equal a scan of
    the full-size label map (the 12000x9000 export depends on it)."""
    from core.export.regions import export_image, upsample_nearest
    from core.tree import SegmentTree
    labels = np.random.default_rng(size[0]).integers(0, 6, (24, 30)).astype(np.int32)
    labels[labels == 5] = 4                              # one label absent, some thin regions
    tree = SegmentTree.flat(labels, image_size=size)
    image = export_image(tree, 1, "x.png", lambda category: 1)
    full = upsample_nearest(labels, size)
    np.testing.assert_array_equal(image.labels >= 0, np.ones(size, bool))
    for index, region in enumerate(image.regions):
        mask = image.labels == index
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert region.slices == (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        assert region.area == mask.sum()
        assert len(np.unique(full[mask])) == 1           # one source label per region
