"""On-disk cache of encoder outputs (any encoder), bounded in size with least-recently-used eviction."""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import platformdirs

from core.features import Features

#: what reading a damaged or foreign .npz file can raise
NPZ_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)


def cache_root(cache_dir: str = "") -> Path:
    """settings.cache_dir if set, else the platform's user cache folder for CutTree."""
    return Path(cache_dir).expanduser() if cache_dir else Path(platformdirs.user_cache_dir("cuttree"))


def image_digest(image: np.ndarray) -> str:
    """A hash of the pixel content (and shape), independent of the file it came from."""
    h = hashlib.sha256(f"{image.shape}|{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


class FeatureCache:
    """Features stored as .npz files named by a hash of their key; the oldest are evicted first."""

    def __init__(self, folder: Path, size_limit_mb: int) -> None:
        self.folder = Path(folder)
        self.size_limit = int(size_limit_mb) * 1024 * 1024

    def get_or_compute(self, key_parts: dict, compute: Callable[[], Features]) -> Features:
        """The cached Features for `key_parts` (JSON-serialisable), or `compute()` stored.

        A damaged entry is deleted and recomputed; a failure to write is not an error."""
        path = self.path_for(key_parts)
        cached = self._read(path)
        if cached is not None:
            os.utime(path)  # marks it recently used for eviction
            return cached
        features = compute()
        self._write(path, features)
        return features

    def path_for(self, key_parts: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key_parts, sort_keys=True, default=str).encode()).hexdigest()
        return self.folder / f"{digest[:40]}.npz"

    def _read(self, path: Path) -> Features | None:
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return _from_arrays(data)
        except NPZ_READ_ERRORS:
            path.unlink(missing_ok=True)
            return None

    def _write(self, path: Path, features: Features) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            np.savez(tmp, **_to_arrays(features))
            os.replace(tmp, path)
            self._evict()
        except OSError:
            pass

    def _evict(self) -> None:
        """Delete least recently used entries until the folder fits the size limit."""
        entries = []
        for p in self.folder.glob("*.npz"):
            try:
                entries.append((p.stat().st_mtime, p.stat().st_size, p))
            except OSError:
                continue
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.size_limit:
                break
            p.unlink(missing_ok=True)
            total -= size


def _to_arrays(features: Features) -> dict[str, np.ndarray]:
    header = {"image_size": list(features.image_size), "encoder": features.encoder, "meta": features.meta,
              "attention": [list(k) for k in features.attention]}
    arrays = {"tokens": features.tokens, "header": np.array(json.dumps(header))}
    for i, matrix in enumerate(features.attention.values()):
        arrays[f"attention_{i}"] = matrix
    return arrays


def _from_arrays(data) -> Features:
    header = json.loads(str(data["header"]))
    attention = {(int(h), int(w)): data[f"attention_{i}"] for i, (h, w) in enumerate(header["attention"])}
    for (h, w), matrix in attention.items():
        if matrix.shape != (h * w, h * w):
            raise ValueError("attention matrix does not match its grid")
    return Features(tokens=data["tokens"], image_size=tuple(header["image_size"]), encoder=header["encoder"],
                    attention=attention, meta=header["meta"])
