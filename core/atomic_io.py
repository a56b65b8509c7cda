"""Atomic file writes: a crash at any moment leaves either the old or the new file, never a torn one.

Each write goes to a temporary file in the target's folder (same file system, so the rename is
atomic), is flushed and fsync'ed, then renamed over the target with `os.replace`; the folder is
fsync'ed afterwards where the platform allows it so the rename itself survives a power cut.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np
from PIL import Image

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Replace `path` by `data` atomically (temp file, flush, fsync, rename, fsync folder)."""
    target = Path(path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_folder(folder)


def atomic_write_text(path: PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, obj: Any, indent: int | None = None) -> None:
    """Write `obj` as UTF-8 JSON atomically; NaN/Infinity are refused (not valid JSON)."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def png_bytes(image: Union[np.ndarray, Image.Image], compress_level: int = 6) -> bytes:
    """Encode an array (uint8 gray/RGB, uint16 gray) or a PIL image as PNG bytes."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def atomic_write_png(path: PathLike, image: Union[np.ndarray, Image.Image], compress_level: int = 6) -> None:
    atomic_write_bytes(path, png_bytes(image, compress_level))


def npz_bytes(arrays: Mapping[str, np.ndarray], compress_level: int = 1) -> bytes:
    """An `.npz` archive readable by `np.load(allow_pickle=False)`; fast deflate by default."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=compress_level) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def atomic_write_npz(path: PathLike, arrays: Mapping[str, np.ndarray], compress_level: int = 1) -> None:
    atomic_write_bytes(path, npz_bytes(arrays, compress_level))


def fsync_folder(folder: Path) -> None:
    """Persist the rename; not possible on Windows, where os.replace is already durable enough."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
