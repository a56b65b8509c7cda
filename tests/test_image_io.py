"""Tests for core.image_io: every supported format decodes to the RGB a viewer shows, bad files fail clearly."""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import ExifTags, Image

from core.errors import ImageLoadError
from core.image_io import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    image_size,
    list_images,
    load_image,
    load_image_downscaled,
)

# Any DecompressionBombWarning escaping from image_io fails the test.
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")


def blocks(height: int = 32, width: int = 48) -> np.ndarray:
    """An RGB test picture of 8x8 blocks in distinct colours (JPEG-friendly, orientation-revealing)."""
    y, x = np.mgrid[0:height, 0:width] // 8
    return np.stack([(x * 50) % 256, (y * 70) % 256, ((x + y) * 30 + 20) % 256], axis=-1).astype(np.uint8)


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, rows: Iterable[bytes] = ()) -> bytes:
    """A PNG written chunk by chunk (Pillow cannot write 16-bit RGB or lying headers); rows are unfiltered."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(b"\0" + row) for row in rows) + compressor.flush()
    body = chunk(b"IHDR", header) + (chunk(b"IDAT", pixels) if rows else b"")
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def save(tmp_path: Path, name: str, array: np.ndarray, mode: str | None = None, **params: object) -> Path:
    """Write array with Pillow to tmp_path/name and return the path."""
    path = tmp_path / name
    Image.fromarray(array, mode).save(path, **params)
    return path


def check_rgb_array(image: np.ndarray, height: int, width: int) -> None:
    """The load_image contract: (H, W, 3) uint8, C-contiguous, writable."""
    assert image.shape == (height, width, 3)
    assert image.dtype == np.uint8
    assert image.flags.c_contiguous and image.flags.writeable


# --- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("lossless.png", {}),
        ("lossless.tif", {}),
        ("compressed.tiff", {"compression": "tiff_lzw"}),
        ("lossless.webp", {"lossless": True}),
        ("plain.bmp", {}),
    ],
)
def test_lossless_formats_round_trip_exactly(tmp_path: Path, name: str, params: dict) -> None:
    picture = blocks()
    image = load_image(save(tmp_path, name, picture, **params))
    check_rgb_array(image, 32, 48)
    np.testing.assert_array_equal(image, picture)


def test_jpeg_round_trips_within_compression_error(tmp_path: Path) -> None:
    picture = blocks()
    image = load_image(str(save(tmp_path, "photo.jpg", picture, quality=100, subsampling=0)))
    check_rgb_array(image, 32, 48)
    assert np.abs(image.astype(int) - picture).max() <= 6


def test_multi_picture_camera_jpeg_gives_first_picture(tmp_path: Path) -> None:
    first, second = blocks(), 255 - blocks()
    path = tmp_path / "camera.jpg"
    Image.fromarray(first).save(
        path, "MPO", save_all=True, append_images=[Image.fromarray(second)], quality=100, subsampling=0
    )
    with Image.open(path) as check:
        assert check.format == "MPO"
    assert np.abs(load_image(path).astype(int) - first).max() <= 8


def test_rgb_png_8bit_in_a_handwritten_file_round_trips(tmp_path: Path) -> None:
    picture = blocks(8, 16)
    path = tmp_path / "hand.png"
    path.write_bytes(png_bytes(16, 8, 8, 2, [row.tobytes() for row in picture]))
    np.testing.assert_array_equal(load_image(path), picture)


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    samples = np.array([[0, 128, 257, 32767], [32768, 40000, 65278, 65535]], dtype=np.uint16)
    image = load_image(save(tmp_path, "grey16.png", samples))
    expected = np.rint(samples / 257.0).astype(np.uint8)
    assert expected[1, 3] == 255 and expected[0, 2] == 1
    np.testing.assert_array_equal(image, np.repeat(expected[..., None], 3, axis=-1))


def test_16bit_rgb_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    levels = np.array([0, 257, 128 * 257, 200 * 257, 65535, 1000, 30000, 65000], dtype=np.uint16)
    samples = np.stack([levels, levels[::-1], np.roll(levels, 3)], axis=-1).reshape(2, 4, 3)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(4, 2, 16, 2, [row.astype(">u2").tobytes() for row in samples]))
    image = load_image(path)
    check_rgb_array(image, 2, 4)
    assert np.abs(image.astype(int) - samples / 257.0).max() <= 1  # 65535 -> 255, 32896 -> 128
    assert image.max() == 255


def test_16bit_grey_tiff_is_scaled(tmp_path: Path) -> None:
    samples = (np.arange(24, dtype=np.uint32).reshape(4, 6) * 2849).astype(np.uint16)
    samples[0, 0] = 65535
    image = load_image(save(tmp_path, "grey16.tif", samples))
    np.testing.assert_array_equal(image[..., 1], np.rint(samples / 257.0).astype(np.uint8))
    assert image[0, 0].tolist() == [255, 255, 255]


def test_16bit_rgb_tiff_is_scaled(tmp_path: Path) -> None:
    samples = blocks(16, 24).astype(np.uint16) * 257
    samples[0, 0] = 65535
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, samples, photometric="rgb")
    np.testing.assert_array_equal(load_image(path), (samples // 257).astype(np.uint8))


def test_float_tiff_is_stretched_to_full_range(tmp_path: Path) -> None:
    samples = np.linspace(-2.0, 3.0, 12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, samples)
    image = load_image(path)
    np.testing.assert_array_equal(image[..., 0], np.rint((samples + 2.0) / 5.0 * 255).astype(np.uint8))


def test_palette_png_gives_palette_colours(tmp_path: Path) -> None:
    palette = [255, 0, 0, 0, 128, 0, 10, 20, 250]
    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    picture = Image.fromarray(indices, "P")
    picture.putpalette(palette)
    picture.save(tmp_path / "palette.png")
    image = load_image(tmp_path / "palette.png")
    np.testing.assert_array_equal(image, np.array(palette, dtype=np.uint8).reshape(3, 3)[indices])


def test_palette_png_transparent_index_shows_white(tmp_path: Path) -> None:
    picture = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), "P")
    picture.putpalette([0, 0, 255, 0, 0, 0])
    picture.save(tmp_path / "transparent.png", transparency=1)
    assert load_image(tmp_path / "transparent.png").tolist() == [[[0, 0, 255], [255, 255, 255]]]


def test_grey_png_gives_equal_channels(tmp_path: Path) -> None:
    grey = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    image = load_image(save(tmp_path, "grey.png", grey))
    np.testing.assert_array_equal(image, np.repeat(grey[..., None], 3, axis=-1))


def test_one_bit_png_gives_black_and_white(tmp_path: Path) -> None:
    bits = np.array([[True, False, True], [False, False, True]])
    image = load_image(save(tmp_path, "bits.png", bits))
    np.testing.assert_array_equal(image, np.repeat(bits[..., None] * 255, 3, axis=-1).astype(np.uint8))


def test_grey_with_alpha_is_composited_over_white(tmp_path: Path) -> None:
    grey_alpha = np.array([[[0, 255], [0, 0], [0, 128], [200, 128]]], dtype=np.uint8)
    image = load_image(save(tmp_path, "la.png", grey_alpha, "LA"))
    assert np.abs(image[0, :, 0].astype(int) - [0, 255, 127, 227]).max() <= 1
    assert (image[..., 0] == image[..., 2]).all()


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 0, 128], [0, 100, 200, 64]]], dtype=np.uint8)
    image = load_image(save(tmp_path, "rgba.png", rgba))
    alpha = rgba[..., 3:] / 255.0
    expected = rgba[..., :3] * alpha + 255 * (1 - alpha)
    assert image[0, :2].tolist() == [[255, 0, 0], [255, 255, 255]]
    assert np.abs(image - expected).max() <= 1


def test_rgba_webp_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2] = [0, 0, 255, 255]
    image = load_image(save(tmp_path, "half.webp", rgba, lossless=True))
    assert image[0, 0].tolist() == [0, 0, 255] and image[3, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize(("orientation", "quarter_turns"), [(6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, quarter_turns: int) -> None:
    """6 = turn 90 degrees clockwise to display, 8 = counter-clockwise; np.rot90 turns counter-clockwise."""
    stored = blocks(32, 48)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    path = save(tmp_path, f"rotated{orientation}.jpg", stored, quality=100, subsampling=0, exif=exif)
    image = load_image(path)
    check_rgb_array(image, 48, 32)
    assert np.abs(image.astype(int) - np.rot90(stored, quarter_turns)).max() <= 6
    assert image_size(path) == (48, 32)


def test_unrotated_jpeg_reports_stored_size(tmp_path: Path) -> None:
    assert image_size(save(tmp_path, "plain.jpg", blocks(32, 48))) == (32, 48)


def test_exif_orientation_in_png_header_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = save(tmp_path, "rotated.png", blocks(16, 24), exif=exif)
    np.testing.assert_array_equal(load_image(path), np.rot90(blocks(16, 24), -1))
    assert image_size(path) == (24, 16)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    cmyk = np.zeros((16, 16, 4), dtype=np.uint8)
    cmyk[:8, :, 0] = 255  # cyan
    cmyk[8:, :, 3] = 128  # half black
    path = save(tmp_path, "cmyk.jpg", cmyk, "CMYK", quality=100)
    with Image.open(path) as check:
        assert check.mode == "CMYK" and check.info.get("adobe")  # Pillow writes Adobe-inverted CMYK
    image = load_image(path)
    check_rgb_array(image, 16, 16)
    assert np.abs(image[:8].astype(int) - [0, 255, 255]).max() <= 3
    assert np.abs(image[8:].astype(int) - [127, 127, 127]).max() <= 3


# --- sizes -------------------------------------------------------------------------------------


def test_20000_square_header_is_accepted_without_bomb_warning(tmp_path: Path) -> None:
    side = 20_000
    path = tmp_path / "scan.png"
    row = bytes(side // 8)  # 1-bit grey: 2500 bytes a row, 50 MB raw, a few kB compressed
    path.write_bytes(png_bytes(side, side, 1, 0, (row for _ in range(side))))
    assert side * side > 2 * Image.MAX_IMAGE_PIXELS  # Pillow alone would refuse it outright
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size(path) == (side, side)


def test_pillow_limit_is_lifted_only_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    picture = blocks(64, 64)
    path = save(tmp_path, "small.png", picture)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels would be an error for Pillow
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_image(path), picture)
        assert image_size(path) == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)


def test_concurrent_reads_restore_pillow_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [save(tmp_path, f"p{i}.png", np.roll(blocks(64, 64), i, axis=0)) for i in range(4)]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        shapes = list(pool.map(lambda p: load_image(p).shape, paths * 10))
    assert shapes == [(64, 64, 3)] * 40
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_absurd_header_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(100_000, 100_000, 8, 2))  # header only: decoding would fail differently
    limit_before = Image.MAX_IMAGE_PIXELS
    for read in (load_image, image_size, lambda p: load_image_downscaled(p, 512)):
        with pytest.raises(ImageLoadError, match="megapixel limit") as caught:
            read(path)
        assert str(path) in str(caught.value) and "100000x100000" in str(caught.value)
    assert 100_000 * 100_000 > MAX_PIXELS
    assert Image.MAX_IMAGE_PIXELS == limit_before


# --- downscaled loading ------------------------------------------------------------------------


def test_downscaled_jpeg_fits_max_side_and_keeps_aspect(tmp_path: Path) -> None:
    picture = np.repeat(np.repeat(blocks(30, 40), 40, axis=0), 40, axis=1)  # 1200x1600, 320-px blocks
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 8
    path = save(tmp_path, "big.jpg", picture, quality=95, exif=exif)
    small = load_image_downscaled(path, 400)
    check_rgb_array(small, 400, 300)
    reference = np.rot90(picture, 1)[::4, ::4]
    assert np.abs(small[20::40, 20::40].astype(int) - reference[20::40, 20::40]).max() <= 8


def test_downscaled_png_is_resized_smoothly(tmp_path: Path) -> None:
    picture = np.repeat(np.repeat(blocks(16, 32), 10, axis=0), 10, axis=1)  # 160x320, 80-px blocks
    small = load_image_downscaled(save(tmp_path, "wide.png", picture), 64)
    check_rgb_array(small, 32, 64)
    np.testing.assert_array_equal(small[8::16, 8::16], picture[40::80, 40::80])


def test_downscaled_keeps_small_images_whole(tmp_path: Path) -> None:
    picture = blocks()
    np.testing.assert_array_equal(load_image_downscaled(save(tmp_path, "s.png", picture), 100), picture)
    with pytest.raises(ValueError, match="max_side"):
        load_image_downscaled(tmp_path / "s.png", 0)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), [("cut.jpg", {"quality": 90}), ("cut.png", {})])
def test_truncated_file_is_an_error_naming_the_file(tmp_path: Path, name: str, params: dict) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    path = save(tmp_path, name, noise, **params)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated") as caught:
        load_image(path)
    assert str(caught.value).startswith(f"cannot read {path}: the file is truncated")


@pytest.mark.parametrize(("name", "params"), [("cut.tif", {}), ("cut.webp", {}), ("cut.bmp", {})])
def test_other_cut_files_are_errors_naming_the_file(tmp_path: Path, name: str, params: dict) -> None:
    noise = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    path = save(tmp_path, name, noise, **params)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=rf"^cannot read {re.escape(str(path))}: "):
        load_image(path)


def test_text_file_named_jpg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: milk, eggs\n")
    for read in (load_image, image_size):
        with pytest.raises(ImageLoadError, match="is not a JPEG, PNG, TIFF, WebP or BMP image") as caught:
            read(path)
        assert str(path) in str(caught.value)


def test_unsupported_format_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path, "anim.gif", blocks(8, 8))
    with pytest.raises(ImageLoadError, match="is not a JPEG, PNG"):
        load_image(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageLoadError, match=rf"^cannot read {re.escape(str(path))}: the file is empty$"):
        load_image(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gone.jpg"
    for read in (load_image, image_size):
        with pytest.raises(ImageLoadError, match=rf"^cannot read {re.escape(str(path))}: the file does not exist"):
            read(path)


def test_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "looks_like.jpg"
    folder.mkdir()
    with pytest.raises(ImageLoadError, match=rf"^cannot read {re.escape(str(folder))}: it is a folder"):
        load_image(folder)


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path, "locked.png", blocks())
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with a user (root) that can read any file")
        with pytest.raises(ImageLoadError, match=rf"^cannot read {re.escape(str(path))}: permission denied"):
            load_image(path)
    finally:
        path.chmod(0o644)


def test_errors_leave_pillow_limit_and_truncation_setting_alone(tmp_path: Path) -> None:
    from PIL import ImageFile

    path = tmp_path / "broken.png"
    path.write_bytes(png_bytes(4, 4, 8, 2, [bytes(12)] * 4)[:-30])
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageLoadError):
        load_image(path)
    assert Image.MAX_IMAGE_PIXELS == limit_before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- listing -----------------------------------------------------------------------------------


def test_image_extensions_are_lowercase_with_dots() -> None:
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"} <= IMAGE_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)


def test_list_images_natural_order_and_filtering(tmp_path: Path) -> None:
    names = ["img10.jpg", "img2.PNG", "img1.jpeg", "Img3.tif", "b.webp", "a.bmp"]
    names += ["notes.txt", ".hidden.jpg", "raw.cr2"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner1.png").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "thumb.png").write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()

    flat = list_images(tmp_path)
    assert [p.name for p in flat] == ["a.bmp", "b.webp", "img1.jpeg", "img2.PNG", "Img3.tif", "img10.jpg"]
    assert all(p.parent == tmp_path for p in flat)

    deep = list_images(str(tmp_path), recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in deep] == [
        "a.bmp", "b.webp", "img1.jpeg", "img2.PNG", "Img3.tif", "img10.jpg", "sub/inner1.png",
    ]


def test_list_images_refuses_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="does not exist"):
        list_images(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ImageLoadError, match="not a folder"):
        list_images(tmp_path / "file.png")
