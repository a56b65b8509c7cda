"""Engines that segment a dataset's images: `local` (one process) and `ray` (a Ray cluster).

Both run the same `ImageJob` (one warm Segmenter per process or actor) and yield one
`ImageResult` per image: the project's own tree-file bytes (whatever the tree format holds), or
the message saying why the image failed. They never write the project; the driver does
(core/dataset_run.py).
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol

import numpy as np

from core.errors import CutTreeError, ModelLoadError
from core.image_sources import load_source, source_name
from core.pipeline import Segmenter
from core.settings import Settings
from core.tree import SegmentTree
from core.tree_file import tree_file_bytes

#: the per-image files of `segment --out`, by the suffix after the image's stem
OUTPUT_SUFFIXES = ("_labels.png", "_overlay.png", "_coco.json")


@dataclass
class WorkerOptions:
    """What every worker needs to segment like every other (sent to Ray actors as is)."""

    settings: dict[str, Any]                 # Settings.to_dict()
    outputs: bool = False                    # also render the `--out` files
    threads: Optional[int] = None            # CPU threads per worker (None: the library default)
    make_segmenter: Callable[[Settings], Segmenter] = Segmenter


@dataclass
class ImageResult:
    """One image's outcome: its tree-file bytes (and `--out` files) or an error message."""

    index: int
    source: str
    tree: bytes = b""
    width: int = 0
    height: int = 0
    outputs: dict[str, bytes] = field(default_factory=dict)
    error: str = ""
    worker: str = ""
    encoder: str = ""
    seconds: float = 0.0
    fatal: bool = False       # the run must stop (the model cannot load): not this image's fault

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class ClusterOptions:
    """How the ray engine runs (the local engine ignores them)."""

    address: Optional[str] = None            # None: start a Ray instance on this machine
    workers: Optional[int] = None            # None: as many as the cluster's resources allow
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    batch_size: int = 1


class Engine(Protocol):
    def __call__(self, items: list[tuple[int, str]], options: WorkerOptions,
                 cluster: ClusterOptions) -> Iterator[ImageResult]:
        """One result per (index, source) item, in any order."""


class ImageJob:
    """Segments images one at a time in this process with one warm Segmenter."""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.segmenter = options.make_segmenter(Settings.from_dict(options.settings))
        if options.threads is not None and self.segmenter.settings.encoder == "diffusion":
            import torch  # noqa: F401  (imported lazily by the encoder: load it now so its threads are pinned)
        self.threads = ThreadLimit(options.threads)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def load(self, source: str) -> tuple[np.ndarray, tuple[int, int]] | CutTreeError:
        """The working image and its full size, or the error saying why it cannot be read."""
        try:
            return load_source(source, self.segmenter.settings.max_mask_side)
        except CutTreeError as exc:
            return exc

    def segment(self, index: int, source: str,
                loaded: tuple[np.ndarray, tuple[int, int]] | CutTreeError) -> ImageResult:
        """Segment a decoded image; any failure becomes the result's message, never a raise
        (except a model that cannot load: not the image's fault, the run stops)."""
        start = time.perf_counter()
        result = ImageResult(index, source, worker=self.worker)
        try:
            if isinstance(loaded, CutTreeError):
                raise loaded
            image, full_size = loaded
            features = self.segmenter.encode(image)
            result.encoder = self.segmenter.encoder.name      # a diffusion model names itself once loaded
            tree = self.segmenter.cut(image, features, full_size=full_size)
            result.tree = tree_file_bytes(tree)
            result.height, result.width = tree.image_size
            if self.options.outputs:
                result.outputs = render_outputs(image, tree, source_name(source))
        except ModelLoadError:
            raise
        except CutTreeError as exc:
            result.error = str(exc)
        except MemoryError:
            result.error = f"{source}: not enough memory to segment it"
        except Exception as exc:        # one bad image must not end a run of thousands
            result.error = f"{source}: segmentation failed ({type(exc).__name__}: {exc})"
        result.seconds = time.perf_counter() - start
        return result

    def __call__(self, index: int, source: str) -> ImageResult:
        return self.segment(index, source, self.load(source))

    def close(self) -> None:
        """Give the process its thread settings back (the local engine runs in the caller's)."""
        self.threads.restore()


def render_outputs(image: np.ndarray, tree: SegmentTree, name: str) -> dict[str, bytes]:
    """The bytes of `segment --out`'s files: label map (full size), overlay (working size) and
    class-agnostic COCO (full size, checked by loading it back)."""
    from core.atomic_io import png_bytes
    from core.export.coco import write_coco_instances
    from core.render import frontier_colors, label_png_bytes, overlay

    with tempfile.TemporaryDirectory(prefix="cuttree-coco-") as tmp:
        coco = Path(tmp) / OUTPUT_SUFFIXES[2]
        write_coco_instances(coco, [(name, tree)])
        return {OUTPUT_SUFFIXES[0]: label_png_bytes(tree),
                OUTPUT_SUFFIXES[1]: png_bytes(overlay(image, tree.frontier_labels()[0], frontier_colors(tree)),
                                              compress_level=1),
                OUTPUT_SUFFIXES[2]: coco.read_bytes()}


class ThreadLimit:
    """Pins this process's BLAS/OpenMP pools (and torch, when loaded) to `threads` until `restore`.
    Equal thread counts give bit-identical diffusion features on the local and Ray engines (a
    different count changes float sums in the last bits)."""

    def __init__(self, threads: Optional[int]) -> None:
        self._pools = self._torch = None
        if threads is None:
            return
        from threadpoolctl import threadpool_limits

        self._pools = threadpool_limits(limits=threads)
        torch = sys.modules.get("torch")
        if torch is not None:
            self._torch = torch.get_num_threads()
            torch.set_num_threads(threads)

    def restore(self) -> None:
        if self._pools is not None:
            self._pools.restore_original_limits()
        if self._torch is not None:
            sys.modules["torch"].set_num_threads(self._torch)
        self._pools = self._torch = None


ENGINES = ("local", "ray")


def get_engine(name: str) -> Engine:
    """The engine called `name` (ray is imported only when asked for)."""
    if name == "local":
        from core.engines.local import run_local
        return run_local
    from core.engines.ray_engine import run_ray
    return run_ray
