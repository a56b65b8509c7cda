"""Mutation fuzzing of the image and annotation loaders (shared by tests/ and bench/).

A loader passes a case when it returns a well-formed result or raises the error type meant for
the user with a one-line message naming the file; anything else (another exception type, a
multi-line message, a malformed result) is a failure, recorded with the mutated bytes' seed.
"""
from __future__ import annotations

import io
import json
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image



@dataclass
class Failure:
    case: int
    seed_name: str
    error: str


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to four random edits: flip bytes, overwrite with extreme values, cut, duplicate or insert."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        if not out:
            break
        kind = int(rng.integers(0, 6))
        at = int(rng.integers(0, max(1, len(out))))
        if kind == 0:                                          # flip a few bits
            for i in rng.integers(0, len(out), int(rng.integers(1, 9))):
                out[int(i)] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:                                        # an extreme 4-byte value (lengths, sizes)
            out[at:at + 4] = bytes(rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                               b"\x00\x01\x00\x00"]))
        elif kind == 2:                                        # truncate
            out = out[:at]
        elif kind == 3:                                        # duplicate a span
            span = out[at:at + int(rng.integers(1, 64))]
            out[at:at] = span
        elif kind == 4:                                        # insert random bytes
            out[at:at] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        else:                                                  # delete a span
            del out[at:at + int(rng.integers(1, 32))]
    return bytes(out)


def image_seeds() -> dict[str, bytes]:
    """Small valid files of every format and several modes the loader handles."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    seeds = {}
    for name, image, params in [
        ("rgb.png", Image.fromarray(rgb), {}), ("grey16.png", Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)), {}),
        ("palette.png", Image.fromarray(rgb).quantize(8), {}), ("rgba.png", Image.fromarray(rgb).convert("RGBA"), {}),
        ("rgb.jpg", Image.fromarray(rgb), {"quality": 90}), ("rgb.tif", Image.fromarray(rgb), {"compression": "tiff_deflate"}),
        ("float.tif", Image.fromarray(rgb[..., 0].astype(np.float32) / 255, "F"), {}),
        ("rgb.webp", Image.fromarray(rgb), {"lossless": True}), ("rgb.bmp", Image.fromarray(rgb), {}),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, format=name.rsplit(".", 1)[1].replace("jpg", "jpeg").replace("tif", "tiff"), **params)
        seeds[name] = buffer.getvalue()
    return seeds


def check_one(path: Path, load: Callable[[Path], object], expected: type, valid: Callable[[object], bool],
              shown: str) -> str:
    """'' when `load(path)` behaves, else what went wrong; `shown` must appear in the message."""
    try:
        result = load(path)
    except expected as exc:
        message = str(exc)
        if "\n" in message or shown not in message:
            return f"message not one line naming the file: {message!r}"
        return ""
    except Exception:      # noqa: BLE001 - every other exception is the finding
        return traceback.format_exc(limit=3)
    return "" if valid(result) else f"malformed result {type(result).__name__}"


def fuzz(seeds: dict[str, bytes], count: int, seed: int, folder: Path, load: Callable[[Path], object],
         expected: type, valid: Callable[[object], bool], shown: str = "") -> list[Failure]:
    """`count` mutated files, round-robin over the seeds, each loaded once; messages must name the
    file (or `shown`)."""
    rng = np.random.default_rng(seed)
    names = sorted(seeds)
    failures = []
    for case in range(count):
        name = names[case % len(names)]
        path = folder / f"case{case}-{name}"
        path.write_bytes(mutate(seeds[name], rng))
        problem = check_one(path, load, expected, valid, shown or path.name)
        if problem:
            failures.append(Failure(case, name, problem))
        path.unlink()
    return failures


def is_rgb(result: object) -> bool:
    return (isinstance(result, np.ndarray) and result.ndim == 3 and result.shape[2] == 3
            and result.dtype == np.uint8 and result.flags.c_contiguous)


def annotation_seeds(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """An annotation file stored (mutations hit the arrays and headers) and deflated (they hit the stream)."""
    from core.atomic_io import npz_bytes
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return {"stored.cuttree.npz": stored.getvalue(), "deflated.cuttree.npz": npz_bytes(arrays)}


def project_json_seed(data: dict) -> dict[str, bytes]:
    return {"project.json": json.dumps(data, indent=1).encode()}

