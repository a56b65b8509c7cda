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
from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError

from core.errors import ImageLoadError, printable

# One gigapixel as 8-bit RGB is 3 GB before any processing: more than a desktop can hold
# next to a diffusion model. Real photos, even stitched panoramas, stay far below it, so a
# larger header means a damaged file or a decompression bomb. Pillow's own limit (~89 Mpx
# warning, ~179 Mpx error) is lifted while we read because it would refuse real 20000x20000
# scans; this constant replaces it and is checked from the header, before any pixel decoding.
MAX_PIXELS = 1_000_000_000
# What decoding may cost, checked against the size Pillow will really decode (after a JPEG's
# draft reduction), before any pixel is decoded: the decoded buffer plus the 8-bit RGB copies
# made from it (DECODE_COPY_BYTES a pixel). 1.25 GB holds a 12000x9000 RGB PNG; a 20000x20000
# PNG or TIFF (a scan, or a 6 KB bomb) is refused, a JPEG of that size decodes at 1/4 scale.
MAX_DECODE_BYTES = 1_250_000_000
DECODE_COPY_BYTES = 7
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_ROWS_PER_CHUNK = 1024

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})

# Pillow would otherwise try every format it knows (EPS even runs Ghostscript). Its JPEG
# opener also reads MPO, the camera JPEGs that carry a second picture (the first is used).
_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
_FORMAT_NAMES = "JPEG, PNG, TIFF, WebP or BMP"
_TRANSPARENT_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_AXES_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error, IndexError,
                  TypeError, KeyError, ZeroDivisionError, OverflowError)
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


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
    white point, are stretched from their minimum to their maximum finite value. Transparent
    pixels are composited over white, the page colour most viewers and annotation tools show
    behind them. Raises ImageLoadError naming the file and the reason.
    """
    return load_working_image(path, None)[0]


def load_image_downscaled(path: str | os.PathLike[str], max_side: int) -> np.ndarray:
    """Like load_image, but at most max_side pixels on the long side; JPEGs decode at reduced scale, cheaply."""
    return load_working_image(path, max_side)[0]


def load_working_image(path: str | os.PathLike[str], max_side: int | None) -> tuple[np.ndarray, tuple[int, int]]:
    """The image at most max_side pixels on the long side (None: full size), and its full (height, width).

    What the pipeline works on, and the size its masks are exported at. Memory stays within
    MAX_DECODE_BYTES: JPEGs decode at reduced scale, other formats are reduced before conversion.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    name = os.fspath(path)
    with _opened(name) as im:
        width, height = im.size
        if max_side is not None and max(width, height) > max_side:
            scale = max_side / max(width, height)
            try:
                im.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))
            except _DECODE_ERRORS as exc:
                raise _error(name, _decode_reason(exc)) from exc
        _check_decode_budget(name, im)
        rgb, orientation = _decoded_rgb(name, im, max_side)
    full = (width, height) if orientation in _AXES_SWAPPING_ORIENTATIONS else (height, width)
    return rgb, full


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Return (height, width) as load_image would give it, from the header only (fast for big folders).

    EXIF orientation is honoured. For PNG, only EXIF stored before the pixel data (where the
    PNG specification puts it) is seen: finding a later one would need decoding every pixel.
    """
    name = os.fspath(path)
    with _opened(name) as im:
        width, height = im.size
        orientation = _orientation(im)
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
        except _DECODE_ERRORS as exc:         # Pillow's parsers raise ValueError & co on damaged headers
            raise _error(name, _decode_reason(exc)) from exc
        with im:
            _check_pixel_count(name, im.size)
            try:
                yield im
            except MemoryError:
                width, height = im.size
                raise _error(name, f"not enough memory for a {width}x{height}-pixel image") from None


def _check_regular_nonempty_file(name: str) -> None:
    """Raise ImageLoadError for a missing path, a folder, a pipe or device, or an empty file."""
    try:
        info = os.stat(name)
    except OSError as exc:
        raise _error(name, _os_reason(exc)) from exc
    if stat.S_ISDIR(info.st_mode):
        raise _error(name, "it is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "a device")
        raise _error(name, f"it is {kind}, not an image file")
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


def _check_decode_budget(name: str, im: Image.Image) -> None:
    """Refuse an image whose decoding (at the size Pillow will decode) would exceed MAX_DECODE_BYTES."""
    width, height = im.size
    needed = width * height * (_BYTES_PER_PIXEL.get(im.mode, 4) + DECODE_COPY_BYTES)
    if needed > MAX_DECODE_BYTES:
        raise _error(name, f"decoding its {width}x{height} pixels would need {needed / 1e9:.1f} GB, "
                           f"more than the {MAX_DECODE_BYTES / 1e9:.2f} GB allowed (a damaged file, a "
                           f"decompression bomb, or an image too big to annotate)")


def _decoded_rgb(name: str, im: Image.Image, max_side: int | None) -> tuple[np.ndarray, int]:
    """Decode an opened image into an upright RGB array at most max_side on the long side; also
    return its EXIF orientation."""
    try:
        im.load()
    except _DECODE_ERRORS as exc:
        raise _error(name, _decode_reason(exc)) from exc
    orientation = _orientation(im)
    try:
        rgb = _as_rgb_image(im)
        if max_side is not None and max(rgb.size) > max_side:
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)   # reduces by box first
        if orientation in _TRANSPOSE:
            rgb = rgb.transpose(_TRANSPOSE[orientation])
        return np.array(rgb), orientation
    except ValueError as exc:
        raise _error(name, f"its colour mode {im.mode} cannot be converted to RGB ({exc})") from exc


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 = upright); an unreadable EXIF block counts as upright."""
    try:
        # Image.getexif, not PngImageFile.getexif: the latter decodes the whole image first.
        value = Image.Image.getexif(im).get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) else 1


def _as_rgb_image(im: Image.Image) -> Image.Image:
    """A decoded image of any mode as an 8-bit RGB Pillow image (im itself when it is one)."""
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
    return im


def _scaled_16bit(im: Image.Image) -> Image.Image:
    """Map 16-bit grey samples to 8 bits with rounding (Pillow's own convert would clip at 255)."""
    return _mapped_to_8bit(np.asarray(im), lambda rows: (rows.astype(np.uint32) * 255 + 32767) // 65535)


def _stretched_to_8bit(im: Image.Image) -> Image.Image:
    """Map 32-bit integer or float samples linearly from their finite min..max to 0..255 (they have no
    white point); +inf shows white, -inf and NaN black."""
    samples = np.asarray(im)
    low, high = _finite_range(samples)
    scale = 255.0 / (high - low) if high > low else 0.0
    return _mapped_to_8bit(samples, lambda rows: np.nan_to_num(
        np.rint(np.clip((rows.astype(np.float64) - low) * scale, 0, 255)), nan=0.0))


def _finite_range(samples: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite samples, (0, 0) when there are none; row chunks bound the memory."""
    low, high = np.inf, -np.inf
    for start in range(0, len(samples), _ROWS_PER_CHUNK):
        rows = samples[start:start + _ROWS_PER_CHUNK]
        finite = rows[np.isfinite(rows)] if rows.dtype.kind == "f" else rows
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return (low, high) if low <= high else (0.0, 0.0)


def _mapped_to_8bit(samples: np.ndarray, mapping) -> Image.Image:
    """An "L" image of mapping(rows) computed a chunk of rows at a time (bounded temporaries)."""
    out = np.empty(samples.shape, dtype=np.uint8)
    for start in range(0, len(samples), _ROWS_PER_CHUNK):
        out[start:start + _ROWS_PER_CHUNK] = mapping(samples[start:start + _ROWS_PER_CHUNK])
    return Image.fromarray(out, "L")


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
    detail = printable(str(exc) or type(exc).__name__)
    if "MAX_TEXT_CHUNK" in detail or "too much memory used in text chunks" in detail.lower():
        return f"a text (metadata) chunk is larger than the {PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB allowed"
    if "truncated" in detail.lower():
        return f"the file is truncated ({detail})"
    return f"the image data is damaged or incomplete ({detail})"


def _error(name: str, reason: str) -> ImageLoadError:
    """ImageLoadError whose message names the file and the reason."""
    return ImageLoadError(f"cannot read {printable(name)}: {reason}")
