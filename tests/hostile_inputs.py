"""Builders of hostile image files (bombs, lying headers, odd chunks), shared by tests and bench/.

Each writes a genuine file of the kind an attacker or a damaged disk produces, cheaply: long runs
of identical rows are deflated once and the compressed block repeated (a full flush makes blocks
independent), so a 31000x31000 PNG takes milliseconds to build.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

_RUN = 1 << 20      # bytes of raw data per repeated deflate block


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_signature_ihdr(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth,
                                                                   colour_type, 0, 0, 0))


def repeated_zlib(unit: bytes, count: int) -> bytes:
    """zlib stream of `unit` repeated `count` times, built without holding the raw data."""
    per_block = max(1, _RUN // len(unit))
    compressor = zlib.compressobj(9)
    block = compressor.compress(unit * per_block) + compressor.flush(zlib.Z_FULL_FLUSH)
    header, block = block[:2], block[2:]      # the first block carries the 2-byte zlib header
    full, rest = divmod(count, per_block)
    adler = _adler32_repeated(zlib.adler32(unit * per_block), per_block * len(unit), full)
    adler = zlib.adler32(unit * rest, adler)
    # the stream ends with a final block: the remainder (maybe nothing), compressed on its own
    closing = zlib.compressobj(9)
    closing_bytes = closing.compress(unit * rest) + closing.flush()
    return header + block * full + closing_bytes[2:-4] + struct.pack(">I", adler)


_BASE = 65521


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """Adler-32 of two concatenated pieces from theirs (as zlib's adler32_combine)."""
    rem = second_length % _BASE
    low = ((first & 0xFFFF) + (second & 0xFFFF) + _BASE - 1) % _BASE
    high = (rem * (first & 0xFFFF) + (first >> 16) + (second >> 16) + _BASE - rem) % _BASE
    return (high << 16) | low


def _adler32_repeated(adler: int, length: int, count: int) -> int:
    """Adler-32 of `count` copies of a piece of `length` bytes whose Adler-32 is `adler` (by doubling)."""
    out, out_length = 1, 0
    while count:
        if count & 1:
            out, out_length = _adler32_combine(out, adler, length), out_length + length
        adler, length, count = _adler32_combine(adler, adler, length), 2 * length, count >> 1
    return out


def bomb_png(path: Path, width: int, height: int, colour_type: int = 2, value: int = 0) -> Path:
    """A valid PNG of identical rows (filter 0), all samples `value`: tiny file, huge image."""
    channels = {0: 1, 2: 3}[colour_type]
    row = b"\0" + bytes([value]) * (width * channels)
    path.write_bytes(png_signature_ihdr(width, height, 8, colour_type)
                     + png_chunk(b"IDAT", repeated_zlib(row, height)) + png_chunk(b"IEND", b""))
    return path


def striped_bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid RGB PNG with a colour ramp in every row (a few MB for 20000x20000)."""
    ramp = (np.arange(width * 3, dtype=np.uint32) * 7 % 251).astype(np.uint8).tobytes()
    path.write_bytes(png_signature_ihdr(width, height, 8, 2)
                     + png_chunk(b"IDAT", repeated_zlib(b"\0" + ramp, height)) + png_chunk(b"IEND", b""))
    return path


def ztxt_png(path: Path, text_bytes: int = 50 * 1024 * 1024) -> Path:
    """A small valid PNG carrying a zTXt chunk that inflates to `text_bytes`."""
    text = zlib.compress(b"a" * text_bytes, 9)
    row = b"\0" + b"\x80" * 3 * 8
    path.write_bytes(png_signature_ihdr(8, 8) + png_chunk(b"zTXt", b"Comment\0\0" + text)
                     + png_chunk(b"IDAT", zlib.compress(row * 8)) + png_chunk(b"IEND", b""))
    return path


def short_ihdr_png(path: Path) -> Path:
    """A PNG whose IHDR chunk holds 9 bytes instead of 13."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIB", 8, 8, 8))
                     + png_chunk(b"IEND", b""))
    return path


def lying_tiff(path: Path, width: int, height: int, samples: int = 3) -> Path:
    """A little-endian TIFF whose header claims width x height pixels, with one tiny deflate strip."""
    strip = zlib.compress(b"\0" * 4096)
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 8),
               (262, 3, 1, 2 if samples == 3 else 1), (273, 4, 1, 0), (277, 3, 1, samples),
               (278, 4, 1, height), (279, 4, 1, len(strip)), (284, 3, 1, 1)]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    entries = [(t, k, n, data_offset if t == 273 else v) for t, k, n, v in entries]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\0" + struct.pack("<I", ifd_offset) + ifd + strip + b"\0" * 2048)
    return path


def float_tiff_with_inf(path: Path, height: int = 16, width: int = 24) -> tuple[Path, np.ndarray]:
    """A 32-bit float TIFF with values 0..1 and one +inf pixel; returns the finite ramp too."""
    ramp = np.linspace(0.0, 1.0, height * width, dtype=np.float32).reshape(height, width)
    data = ramp.copy()
    data[0, 0] = np.inf
    Image.fromarray(data, "F").save(path)
    return path, ramp


def photo_jpeg(path: Path, width: int, height: int, quality: int = 90) -> Path:
    """A photo-like JPEG of any size: skimage's astronaut, stretched (bilinear) to width x height."""
    import skimage.data
    Image.fromarray(skimage.data.astronaut()).resize((width, height), Image.Resampling.BILINEAR).save(
        path, quality=quality)
    return path
