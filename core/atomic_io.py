"""Atomic file writes: a crash at any moment leaves either the old or the new file, never a torn one.

Each write goes to a temporary file in the target's folder (same file system, so the rename is
atomic), is flushed and fsync'ed, then renamed over the target with `os.replace`; the folder is
fsync'ed afterwards where the platform allows it so the rename itself survives a power cut.
Temporary files and folders are created with mode 0o666 / 0o777 and the kernel applies the
user's umask, so results get the permissions an ordinary `open()` gives (0644 under 022;
`tempfile.mkstemp` would give 0600). Sets of files (a folder of PNGs) are written into a staged
sibling folder and swapped in whole (`replace_folder`).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import json
import os
import secrets
import shutil
import sys
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
    fd, tmp = _create_temp(folder, target.name)
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


def _create_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new file `.<name>.<random>.tmp` in `folder`, mode 0o666 minus the umask (as `open()` makes)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = str(folder / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def staging_folder(target: Path) -> Path:
    """A new empty sibling folder of `target` to build a file set in before `replace_folder`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        staged = target.with_name(f".{target.name}.{secrets.token_hex(6)}.staging")
        try:
            os.mkdir(staged, 0o777)          # the umask applies, as for a plain mkdir
            return staged
        except FileExistsError:
            continue


def replace_folder(staged: Path, target: Path) -> None:
    """Make the fully written folder `staged` become `target` in one step; the old one is deleted.

    Everything in `staged` is fsync'ed first. On Linux an existing target is swapped with
    `renameat2(RENAME_EXCHANGE)`, so a reader (or a kill) sees the old folder or the new one;
    elsewhere the old folder is renamed aside first (a kill in between leaves no `target` and
    the old folder as `.<name>.<random>.old`, never a mix).
    """
    staged, target = Path(staged), Path(target)
    _fsync_tree(staged)
    if not os.path.lexists(target):
        os.rename(staged, target)
        fsync_folder(target.parent)
        return
    if _exchange(staged, target):
        old = staged
    else:
        old = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
        os.rename(target, old)
        os.rename(staged, target)
    fsync_folder(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_folder(Path(root))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


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
