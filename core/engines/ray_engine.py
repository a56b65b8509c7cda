"""The ray engine: Ray Data's `map_batches` over the sources with an actor class, so each actor
loads the model once (GPU actors by `num_gpus`); streaming overlaps reading and segmenting.

Workers read the images themselves (local paths must be readable on every node; URIs are read
with pyarrow) and send back only tree-file bytes, so the driver never holds the images and no
shared filesystem is needed for the results. A worker killed mid-batch is restarted by Ray and
its batch retried (Ray Data's default); an image that killed MAX_DEATHS workers comes back as a
failed result instead of being tried again (decision 0205).
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator, Optional

from core.engines import ClusterOptions, ImageJob, ImageResult, OUTPUT_SUFFIXES, WorkerOptions
from core.errors import CutTreeError, ModelLoadError

MAX_DEATHS = 3            # workers an image may kill before it is recorded as failed
QUIET = {"RAY_DATA_LOG_LEVEL": "ERROR"}
INSTALL_HINT = "pip install 'cuttree[cluster]'  (Ray with its data extra)"
_BINARY = ("tree",) + OUTPUT_SUFFIXES
_COLUMNS = ("index", "source", "width", "height", "error", "worker", "encoder", "seconds", "fatal") + _BINARY


class RayUnavailable(CutTreeError):
    """Ray is not installed, or its cluster cannot be reached."""


class RayRunError(CutTreeError):
    """A worker raised an error that stops the run (e.g. the model cannot be loaded)."""


class RaySegmentActor:
    """A Ray Data map_batches class: one ImageJob (model loaded once) per actor."""

    def __init__(self, options: WorkerOptions, ledger: Any) -> None:
        self.job = ImageJob(options)
        self.ledger = ledger

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        results = [self._one(int(i), s) for i, s in zip(batch.column("index").to_pylist(),
                                                        batch.column("source").to_pylist())]
        columns = {name: [_field(r, name) for r in results] for name in _COLUMNS}
        types = {name: pa.large_binary() for name in _BINARY}
        return pa.table({name: pa.array(values, type=types.get(name)) for name, values in columns.items()})

    def _one(self, index: int, source: str) -> ImageResult:
        import ray

        deaths = ray.get(self.ledger.start.remote(index))
        if deaths >= MAX_DEATHS:
            result = ImageResult(index, source, worker=self.job.worker,
                                 error=f"{source}: the worker process died each of the {deaths} times "
                                       f"it segmented this image")
        else:
            try:
                result = self.job(index, source)
            except ModelLoadError as exc:       # sent back as a row: Ray would keep only its text
                result = ImageResult(index, source, error=str(exc), worker=self.job.worker, fatal=True)
        self.ledger.finish.remote(index)
        return result


def _field(result: ImageResult, name: str) -> Any:
    if name in OUTPUT_SUFFIXES:
        return result.outputs.get(name, b"")
    return getattr(result, name)


def _result(row: dict[str, Any]) -> ImageResult:
    outputs = {s: row[s] for s in OUTPUT_SUFFIXES if row[s]}
    return ImageResult(int(row["index"]), row["source"], row["tree"], int(row["width"]), int(row["height"]),
                       outputs, row["error"], row["worker"], row["encoder"], float(row["seconds"]),
                       bool(row["fatal"]))


def run_ray(items: list[tuple[int, str]], options: WorkerOptions,
            cluster: ClusterOptions) -> Iterator[ImageResult]:
    """One result per item from a Ray cluster (an item no result came back for becomes a failure)."""
    if not items:
        return
    ray = connect(cluster.address)
    seen: set[int] = set()
    for result in _map(ray, items, options, cluster):
        if result.index not in seen:
            seen.add(result.index)
            yield result
    for index, source in items:
        if index not in seen:
            yield ImageResult(index, source, error=f"{source}: no result came back from the Ray cluster")


def _map(ray: Any, items: list[tuple[int, str]], options: WorkerOptions,
         cluster: ClusterOptions) -> Iterator[ImageResult]:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False       # the driver shows its own bar
    ledger = ray.remote(num_cpus=0)(AttemptLedger).remote()
    dataset = ray.data.from_items([{"index": i, "source": s} for i, s in items],
                                  override_num_blocks=max(1, math.ceil(len(items) / cluster.batch_size)))
    mapped = dataset.map_batches(
        RaySegmentActor, fn_constructor_kwargs={"options": options, "ledger": ledger},
        batch_size=cluster.batch_size, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=cluster.workers or default_workers(ray, cluster)),
        num_cpus=cluster.cpus_per_worker, num_gpus=cluster.gpus_per_worker or None)
    try:
        for row in mapped.iter_rows():
            result = _result(row)
            if result.fatal:
                raise RayRunError(result.error)
            yield result
    except RayRunError:
        raise
    except Exception as exc:            # an error outside ImageJob's care: one line, no traceback
        raise RayRunError(_worker_message(exc)) from None
    finally:
        ray.kill(ledger)


def _worker_message(exc: BaseException) -> str:
    """One line for an error that crossed from a worker: the last line of Ray's report (the
    original exception's type and message; Ray keeps the traceback only as text)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"the Ray run failed on a worker: {lines[-1] if lines else type(exc).__name__}"


class AttemptLedger:
    """Per image, how many workers started it and never finished: each such start is a worker
    that died on it. Ray Data restarts dead actors and retries their batches without limit; this
    is what stops an image that kills every worker from being retried forever."""

    def __init__(self) -> None:
        self.open: set[int] = set()
        self.deaths: dict[int, int] = {}

    def start(self, index: int) -> int:
        """Record a start; return the deaths so far on this image."""
        if index in self.open:
            self.deaths[index] = self.deaths.get(index, 0) + 1
        self.open.add(index)
        return self.deaths.get(index, 0)

    def finish(self, index: int) -> None:
        self.open.discard(index)


def default_workers(ray: Any, cluster: ClusterOptions) -> int:
    """As many actors as the cluster's GPUs (or CPUs) hold at the requested share each."""
    resources = ray.cluster_resources()
    if cluster.gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) // cluster.gpus_per_worker))
    return max(1, int(resources.get("CPU", 1) // cluster.cpus_per_worker))


def connect(address: Optional[str], num_cpus: Optional[int] = None) -> Any:
    """Ray, initialised once per process: a new local instance (`num_cpus` of this machine's
    CPUs, default all), or the cluster at `address` ("auto" or HOST:PORT)."""
    for name, level in QUIET.items():     # the driver reports progress and failures itself
        os.environ.setdefault(name, level)
    try:
        import ray
        import ray.data  # noqa: F401  (the data extra: pyarrow, pandas)
    except ImportError as exc:
        raise RayUnavailable(f"--engine ray needs Ray ({exc.name or exc} is not installed): "
                             f"{INSTALL_HINT}") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, num_cpus=num_cpus, runtime_env=runtime_env(), include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise RayUnavailable(f"cannot start or reach {where}: {exc}") from None
    return ray


def runtime_env() -> dict[str, Any]:
    """Workers import this very `core` package (shipped by Ray), whatever the nodes have installed;
    the nodes need CutTree's dependencies only."""
    return {"py_modules": [str(Path(__file__).resolve().parents[1])]}
