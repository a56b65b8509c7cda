"""Read image files into 8-bit RGB arrays as a viewer shows them, with clear errors for bad files."""

from __future__ import annotations

import os
import re
import stat
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from core.errors import ImageLoadError

# One gigapixel as 8-bit RGB is 3 GB before any processing: more than a desktop can hold
# next to a diffusion model. Real photos, even stitched panoramas, stay far below it, so a
# larger header means a damaged file or a decompression bomb. Pillow's own limit (~89 Mpx
# warning, ~179 Mpx error) is lifted while we read because it would refuse real 20000x20000
# scans; this constant replaces it and is checked from the header, before any pixel decoding.
MAX_PIXELS = 1_000_000_000

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})

# Pillow would otherwise try every format it knows (EPS even runs Ghostscript). Its JPEG
# opener also reads MPO, the camera JPEGs that carry a second picture (the first is used).
_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
_FORMAT_NAMES = "JPEG, PNG, TIFF, WebP or BMP"
_TRANSPARENT_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_AXES_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error)


class _PillowLimitLifted:
    """Context that switches Pillow's global pixel limit off while any image_io read runs, then restores it.

    Reference-counted so that concurrent reads neither block each other nor restore too early;
    Pillow's limit is back to its previous value as soon as the last read ends, even on error.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._saved: int | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._readers == 0:
                self._saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
            self._readers += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._readers -= 1
            if self._readers == 0:
                Image.MAX_IMAGE_PIXELS = self._saved


_PILLOW_LIMIT_LIFTED = _PillowLimitLifted()


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Return the image as a C-contiguous (H, W, 3) uint8 RGB array, as an image viewer shows it.

    EXIF orientation is applied; CMYK (Adobe-inverted too) becomes RGB; 16-bit samples are
    scaled to 8 bits (65535 -> 255); 32-bit integer and float images, which have no standard
    white point, are stretched from their minimum to their maximum. Transparent pixels are
    composited over white, the page colour most viewers and annotation tools show behind them.
    Raises ImageLoadError naming the file and the reason.
    """
    with _opened(path) as im:
        return _decoded_rgb(os.fspath(path), im, draft_size=None)


def load_image_downscaled(path: str | os.PathLike[str], max_side: int) -> np.ndarray:
    """Like load_image, but at most max_side pixels on the long side; JPEGs decode at reduced scale, cheaply."""
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    with _opened(path) as im:
        width, height = im.size
        scale = max_side / max(width, height)
        draft_size = (max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1 else None
        rgb = _decoded_rgb(os.fspath(path), im, draft_size)
    if max(rgb.shape[:2]) <= max_side:
        return rgb
    small = Image.fromarray(rgb)
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.array(small)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Return (height, width) as load_image would give it, from the header only (fast for big folders).

    EXIF orientation is honoured. For PNG, only EXIF stored before the pixel data (where the
    PNG specification puts it) is seen: finding a later one would need decoding every pixel.
    """
    with _opened(path) as im:
        width, height = im.size
        try:
            # Image.getexif, not PngImageFile.getexif: the latter decodes the whole image first.
            orientation = Image.Image.getexif(im).get(ExifTags.Base.Orientation, 1)
        except _DECODE_ERRORS as exc:
            raise _error(os.fspath(path), _decode_reason(exc)) from exc
    return (width, height) if orientation in _AXES_SWAPPING_ORIENTATIONS else (height, width)


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Return the image files in folder by extension, in natural name order, skipping hidden files and folders."""
    root = Path(folder)
    if not root.is_dir():
        reason = "it is not a folder" if root.exists() else "the folder does not exist"
        raise ImageLoadError(f"cannot list images in {root}: {reason}")
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [Path(directory, name) for name in files if _is_image_name(name)]
        if not recursive:
            break
    return sorted(found, key=lambda p: _natural_path_key(p.relative_to(root)))


def _is_image_name(name: str) -> bool:
    """True for a visible file name with an image extension."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _natural_path_key(relative: Path) -> tuple[list[tuple[str | int, ...]], str]:
    """Sort key where digit runs compare as numbers (img2 < img10), letters ignore case, folder by folder."""
    return [_natural_key(part) for part in relative.parts], relative.as_posix()


def _natural_key(name: str) -> tuple[str | int, ...]:
    """Name split into alternating text (case-folded) and numbers; re.split always starts with text."""
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(re.split(r"(\d+)", name)))


@contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """Open path with only its header read, after checking that it is a readable, non-empty, sane-sized image."""
    name = os.fspath(path)
    _check_regular_nonempty_file(name)
    with _PILLOW_LIMIT_LIFTED:
        try:
            im = Image.open(name, formats=_FORMATS)
        except UnidentifiedImageError:
            raise _error(name, f"it is not a {_FORMAT_NAMES} image, or its header is damaged") from None
        except OSError as exc:
            raise _error(name, _os_reason(exc)) from exc
        with im:
            _check_pixel_count(name, im.size)
            try:
                yield im
            except MemoryError:
                width, height = im.size
                raise _error(name, f"not enough memory for a {width}x{height}-pixel image") from None


def _check_regular_nonempty_file(name: str) -> None:
    """Raise ImageLoadError for a missing path, a folder or an empty file."""
    try:
        info = os.stat(name)
    except OSError as exc:
        raise _error(name, _os_reason(exc)) from exc
    if stat.S_ISDIR(info.st_mode):
        raise _error(name, "it is a folder, not an image file")
    if info.st_size == 0:
        raise _error(name, "the file is empty")


def _check_pixel_count(name: str, size: tuple[int, int]) -> None:
    """Refuse images over MAX_PIXELS before their pixels are decoded."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise _error(
            name,
            f"the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"more than the {MAX_PIXELS / 1e6:.0f}-megapixel limit (a damaged file, or too big to annotate)",
        )


def _decoded_rgb(name: str, im: Image.Image, draft_size: tuple[int, int] | None) -> np.ndarray:
    """Decode an opened image (at reduced JPEG scale if draft_size is given) into an upright RGB array."""
    try:
        if draft_size is not None:
            im.draft(None, draft_size)
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
    except _DECODE_ERRORS as exc:
        raise _error(name, _decode_reason(exc)) from exc
    try:
        return _as_rgb_array(im)
    except ValueError as exc:
        raise _error(name, f"its colour mode {im.mode} cannot be converted to RGB ({exc})") from exc


def _as_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert a decoded image of any mode to a writable C-contiguous uint8 RGB array."""
    # Pillow < 10.3 opened 16-bit grey PNGs as 32-bit "I" (python-pillow/Pillow#7849).
    if im.mode.startswith("I;16") or (im.mode == "I" and im.format == "PNG"):
        im = _scaled_16bit(im)
    elif im.mode in ("I", "F"):
        im = _stretched_to_8bit(im)
    if im.mode in _TRANSPARENT_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.new("RGB", rgba.size, "white")
        im.paste(rgba, mask=rgba)
    elif im.mode != "RGB":
        im = im.convert("RGB")
    return np.array(im)


def _scaled_16bit(im: Image.Image) -> Image.Image:
    """Map 16-bit grey samples to 8 bits with rounding (Pillow's own convert would clip at 255)."""
    samples = np.asarray(im).astype(np.uint32)
    return Image.fromarray(((samples * 255 + 32767) // 65535).astype(np.uint8), "L")


def _stretched_to_8bit(im: Image.Image) -> Image.Image:
    """Map 32-bit integer or float samples linearly from their min..max to 0..255 (they have no white point)."""
    samples = np.asarray(im, dtype=np.float64)
    low, high = float(np.nanmin(samples)), float(np.nanmax(samples))
    scaled = (samples - low) * (255.0 / (high - low)) if high > low else np.zeros_like(samples)
    return Image.fromarray(np.nan_to_num(np.rint(scaled)).astype(np.uint8), "L")


def _os_reason(exc: OSError) -> str:
    """Plain words for a failure to reach or open a file."""
    if isinstance(exc, FileNotFoundError):
        return "the file does not exist"
    if isinstance(exc, PermissionError):
        return "permission denied (the file is not readable by this user)"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not an image file"
    return exc.strerror or str(exc)


def _decode_reason(exc: BaseException) -> str:
    """Plain words for a failure while decoding pixels, keeping Pillow's detail in brackets."""
    detail = str(exc) or type(exc).__name__
    if "truncated" in detail.lower():
        return f"the file is truncated ({detail})"
    return f"the image data is damaged or incomplete ({detail})"


def _error(name: str, reason: str) -> ImageLoadError:
    """ImageLoadError whose message names the file and the reason."""
    return ImageLoadError(f"cannot read {name}: {reason}")
