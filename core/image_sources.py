"""Where a dataset run's images come from: files, folders, manifests, and URIs read by pyarrow.

A source is a string: an absolute local path, or a URI (`s3://`, `gs://`, `hdfs://`, `file://`,
anything pyarrow's filesystems open). A manifest is a text file (.txt, .lst, .manifest) with one
path or URI per line; blank lines and lines starting with # are skipped, relative paths are
relative to the manifest's folder. URIs are read where the image is segmented (on a cluster
worker), so the driver of a run never holds the images.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional

import numpy as np

from core.errors import CutTreeError, ImageLoadError
from core.image_io import list_images, load_working_image

MANIFEST_SUFFIXES = frozenset({".txt", ".lst", ".manifest"})
MAX_MANIFEST_BYTES = 1 << 30
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class SourceError(CutTreeError):
    """An input cannot be listed (unreadable manifest, missing folder); the message names it."""


def is_uri(source: str) -> bool:
    """True for `scheme://...` (a Windows path such as C:\\x never matches)."""
    return bool(_URI.match(source))


def source_name(source: str) -> str:
    """The file name of a path or URI (for messages and COCO file names)."""
    return PurePosixPath(source.split("?", 1)[0]).name if is_uri(source) else Path(source).name


def collect_sources(inputs: Iterable[str | os.PathLike[str]], recursive: bool = False) -> list[str]:
    """Every image source named by `inputs` (files, folders, manifests, URIs), in order, once each."""
    out: dict[str, None] = {}
    for item in inputs:
        text = os.fspath(item)
        if is_uri(text):
            out.setdefault(text)
            continue
        path = Path(text)
        if path.is_dir():
            out.update(dict.fromkeys(str(p.absolute()) for p in list_images(path, recursive=recursive)))
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            out.update(dict.fromkeys(read_manifest(path)))
        else:
            out.setdefault(str(path.absolute()))
    return list(out)


def read_manifest(path: Path) -> list[str]:
    """The sources a manifest lists (relative paths resolved against its folder)."""
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise SourceError(f"{path}: manifest larger than {MAX_MANIFEST_BYTES >> 20} MB")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: manifest is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SourceError(f"{path}: manifest cannot be read ({exc.strerror or exc})") from None
    sources = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        sources.append(line if is_uri(line) else str((path.parent / line).absolute()))
    return sources


def load_source(source: str, max_side: Optional[int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The image at most `max_side` on its long side and its full (height, width), as
    image_io.load_working_image gives them; raises ImageLoadError naming the source."""
    if not is_uri(source):
        return load_working_image(source, max_side)
    data = read_uri(source)
    suffix = PurePosixPath(source_name(source)).suffix
    handle, tmp = tempfile.mkstemp(prefix="cuttree-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return load_working_image(tmp, max_side)
    except ImageLoadError as exc:    # name the URI, not the temporary copy
        raise ImageLoadError(str(exc).replace(tmp, source)) from None
    finally:
        os.unlink(tmp)


def read_uri(uri: str) -> bytes:
    """The bytes of a URI through pyarrow's filesystems (installed with the cluster extra)."""
    try:
        from pyarrow import fs
    except ImportError:
        raise ImageLoadError(f"{uri}: reading URIs needs pyarrow (pip install 'cuttree[cluster]')") from None
    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_stream(path) as stream:
            return stream.read()
    except (OSError, ValueError) as exc:   # pyarrow raises these for missing files and bad schemes
        raise ImageLoadError(f"{uri}: cannot be read ({exc})") from None
