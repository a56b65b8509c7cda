"""Segment a whole dataset into a project (and/or `--out` files), resumable and exact.

The driver is the only writer. Per finished image it writes the `--out` files and the tree file
(atomically, on a writing thread), then its fsync'ed journal line; `project.json` is saved every CHECKPOINT_IMAGES images or
CHECKPOINT_SECONDS and at the end. A run killed at any moment and
started again folds the journal into the project, skips the images with a tree, and segments
the rest, so every image ends in the project exactly once (decision 0205).
"""
from __future__ import annotations

import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from tqdm import tqdm

from core.atomic_io import atomic_write_bytes
from core.engines import ClusterOptions, Engine, ImageResult, WorkerOptions, get_engine
from core.errors import CutTreeError, printable
from core.image_sources import is_uri, source_name
from core.project import PROJECT_FILE, Project
from core.run_journal import JournalRecord, ProjectLock, RunJournal
from core.settings import Settings

CHECKPOINT_IMAGES = 200
CHECKPOINT_SECONDS = 30.0
WRITE_THREADS = 4
WRITE_QUEUE = 16         # images whose files may be in flight at once (bounds memory)


@dataclass
class RunOptions:
    """What a `segment` run writes and which images it (re)does."""

    project: Optional[Path] = None
    out: Optional[Path] = None
    redo: bool = False
    retry_failed: bool = False
    engine: str = "local"
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    threads: Optional[int] = None
    progress: bool = True


@dataclass
class WorkerStats:
    images: int = 0
    seconds: float = 0.0
    failures: int = 0


@dataclass
class RunSummary:
    """What a run did; `failed` maps each image that is not segmented to its message."""

    requested: int = 0
    segmented: int = 0
    skipped: int = 0                 # already in the project
    failed: dict[str, str] = field(default_factory=dict)
    earlier_failures: int = 0        # failed in an earlier run and not retried (see --retry-failed)
    encoder: str = ""
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def add(self, result: ImageResult) -> None:
        stats = self.workers.setdefault(result.worker or "(lost)", WorkerStats())
        stats.images += 1
        stats.seconds += result.seconds
        if result.ok:
            self.segmented += 1
            self.encoder = self.encoder or result.encoder
        else:
            stats.failures += 1
            self.failed[result.source] = result.error


class ResultWriter:
    """The driver's writes: the `--out` files and/or the project. Each image is written on one of
    a few threads (an atomic write ends in two fsyncs, 10-12 ms on a VM disk: one thread would
    limit a large cluster), its journal line appended by that thread once its files are on disk."""

    def __init__(self, settings: Settings, project: Optional[Path], out: Optional[Path]) -> None:
        self.out = out
        self.project: Optional[Project] = None
        self.journal: Optional[RunJournal] = None
        self.failures: dict[str, JournalRecord] = {}
        if project is not None:
            self.project = (Project.open(project) if (Path(project) / PROJECT_FILE).is_file()
                            else Project.create(project, settings=settings))
            self.journal = RunJournal(project)
            self._fold_journal()
        if out is not None:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = "it is a file, not a folder" if isinstance(exc, FileExistsError) else exc.strerror or exc
                raise CutTreeError(f"cannot use {out} as the output folder: {reason}") from None
        self.write_failures: list[tuple[str, str]] = []     # (source, message), for the caller to report
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="cuttree-write")
        self._pending: deque[Future] = deque()
        self._unsaved = 0
        self._saved_at = time.monotonic()

    def _fold_journal(self) -> None:
        """Add the images a killed run finished after its last save; remember the failures."""
        folded = 0
        for key, record in self.journal.replay().items():
            if not record.ok:
                self.failures[key] = record
                continue
            source = key if is_uri(key) else self.project.folder / key
            if self.project.find_image(source) is None:
                self.project.add_image(source, record.width, record.height)
                folded += 1
        if folded:
            self.project.save()

    def is_done(self, source: str) -> bool:
        if self.project is None:
            return False
        entry = self.project.find_image(source)
        return entry is not None and self.project.has_tree(entry.id)

    def failed_before(self, source: str) -> Optional[str]:
        if self.project is None:
            return None
        record = self.failures.get(self.project.relative_path(source))
        return None if record is None else record.message

    def write(self, result: ImageResult, stem: str) -> None:
        """Record one finished or failed image (durably once `collect` has seen it through)."""
        key = self.project.relative_path(result.source) if self.project else None
        if not result.ok:
            if self.journal:
                self.failures[key] = JournalRecord(key, False, message=result.error)
                self.journal.append(self.failures[key])
            return
        files = [(self.out / f"{stem}{suffix}", data) for suffix, data in result.outputs.items()] if self.out else []
        record = None
        if self.project:
            entry = (self.project.find_image(result.source)
                     or self.project.add_image(result.source, result.width, result.height))
            entry.width, entry.height = result.width, result.height
            files.append((self.project.annotation_path(entry.id), result.tree))
            record = JournalRecord(key, True, result.width, result.height)
            self.failures.pop(key, None)
        self._pending.append(self._pool.submit(self._write, result.source, files, record))
        self.collect(wait=len(self._pending) > WRITE_QUEUE)

    def collect(self, wait: bool = False) -> None:
        """Take back the finished writes (waiting for the oldest when `wait`); failed ones go to
        `write_failures`."""
        while self._pending and (wait or self._pending[0].done()):
            failure = self._pending.popleft().result()
            wait = False
            if failure:
                self.write_failures.append(failure)
            else:
                self._unsaved += 1
        if self._unsaved >= CHECKPOINT_IMAGES or time.monotonic() - self._saved_at > CHECKPOINT_SECONDS:
            self.checkpoint()

    def _write(self, source: str, files: list[tuple[Path, bytes]],
               record: Optional[JournalRecord]) -> Optional[tuple[str, str]]:
        """On a writing thread: the image's files (tree last), then its journal line. A file that
        cannot be written takes the image's others with it: (source, message), and the image is
        not done (a later run segments it again)."""
        written: list[Path] = []
        for path, data in files:
            try:
                atomic_write_bytes(path, data)
            except OSError as exc:
                for done in written:
                    done.unlink(missing_ok=True)
                return source, (f"cannot write {path}: {exc.strerror or exc} "
                                f"(nothing was kept for {source_name(source)})")
            written.append(path)
        if record is not None:
            self.journal.append(record)
        return None

    def checkpoint(self) -> None:
        if self.project:
            self.project.save()
        self._unsaved, self._saved_at = 0, time.monotonic()

    def close(self) -> None:
        """Finish the writes, save `project.json`, shrink the journal to the failures it keeps."""
        try:
            while self._pending:
                self.collect(wait=True)
        finally:
            self._pool.shutdown(wait=True)
            if self.project:
                self.checkpoint()
                self.journal.compact(list(self.failures.values()))


def run_dataset(sources: list[str], settings: Settings, options: RunOptions,
                engine: Optional[Engine] = None, worker: Optional[WorkerOptions] = None) -> RunSummary:
    """Segment `sources` as `options` say; raises CutTreeError (e.g. ProjectLocked) before any work."""
    start = time.perf_counter()
    worker = worker or WorkerOptions(settings.to_dict(), outputs=options.out is not None,
                                     threads=options.threads)
    engine = engine or get_engine(options.engine)
    summary = RunSummary(requested=len(sources))
    lock = ProjectLock(options.project) if options.project else None
    if lock:
        lock.acquire()
    try:
        writer = ResultWriter(settings, options.project, options.out)
        try:
            todo = _plan(sources, writer, options, summary)
            stems = _stems(todo)
            for result in _progress(engine(todo, worker, options.cluster), len(todo), summary, options):
                writer.write(result, stems[result.index])
                summary.add(result)
                _report_write_failures(writer, summary)
        finally:
            writer.close()
            _report_write_failures(writer, summary)
    finally:
        if lock:
            lock.release()
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _report_write_failures(writer: ResultWriter, summary: RunSummary) -> None:
    for source, message in writer.write_failures:
        tqdm.write(f"error: {printable(message)}", file=sys.stderr)
        summary.segmented -= 1
        summary.failed[source] = message
    writer.write_failures.clear()


def _plan(sources: list[str], writer: ResultWriter, options: RunOptions,
          summary: RunSummary) -> list[tuple[int, str]]:
    """The (index, source) items still to segment."""
    todo = []
    for index, source in enumerate(sources):
        if not options.redo:
            if writer.is_done(source):
                summary.skipped += 1
                continue
            earlier = writer.failed_before(source)
            if earlier is not None and not options.retry_failed:
                summary.earlier_failures += 1
                summary.failed[source] = earlier
                continue
        todo.append((index, source))
    return todo


def _stems(items: list[tuple[int, str]]) -> dict[int, str]:
    """A unique output stem per image of this run (the file's stem, then stem-2, stem-3...)."""
    taken: set[str] = set()
    stems = {}
    for index, source in items:
        base = Path(source_name(source)).stem
        stem, n = base, 2
        while stem in taken:
            stem, n = f"{base}-{n}", n + 1
        taken.add(stem)
        stems[index] = stem
    return stems


def _progress(results: Iterable[ImageResult], total: int, summary: RunSummary,
              options: RunOptions) -> Iterator[ImageResult]:
    """A tqdm bar (images/s, ETA, failures) over the results; failures are printed as they come."""
    bar = tqdm(total=total, unit="image", file=sys.stderr, disable=None if options.progress else True,
               dynamic_ncols=True, smoothing=0.1)
    failures = 0
    try:
        for result in results:
            yield result
            if not result.ok:
                failures += 1
                tqdm.write(f"error: {printable(result.error)}", file=sys.stderr)
            bar.set_postfix(failed=failures, refresh=False)
            bar.update(1)
    finally:
        bar.close()


def print_summary(summary: RunSummary, target: str, settings: Settings,
                  write: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> None:
    """The end-of-run report: per worker, the failures, and one totals line."""
    if summary.workers:
        write(f"{'worker':<28} {'images':>7} {'seconds':>9} {'failures':>8}")
        for name, stats in sorted(summary.workers.items()):
            write(f"{name:<28} {stats.images:>7} {stats.seconds:>9.1f} {stats.failures:>8}")
    if summary.failed:
        write(f"{len(summary.failed)} image(s) not segmented:")
        for source, message in summary.failed.items():
            write(printable(f"  {source}: {message}" if source not in message else f"  {message}"))
        if summary.earlier_failures:
            write(f"({summary.earlier_failures} failed in an earlier run; --retry-failed tries them again)")
    done = summary.segmented + summary.skipped
    encoder = summary.encoder or settings.encoder
    write(f"{done} of {summary.requested} images segmented into {target} with the {encoder} encoder and "
          f"the {settings.cut_method} method"
          + (f" ({summary.skipped} already there)" if summary.skipped else "")
          + (f"; {len(summary.failed)} failed" if summary.failed else "")
          + f"; wall time {summary.wall_seconds:.1f} s")
