"""Segmentation off the GUI thread: a worker object living in its own QThread.

The window sends jobs through a queued signal; the worker loads the image, segments it and
answers with `finished`, `failed` or `cancelled`. Each job carries its own CancelToken, so the
window can cancel the running job or drop queued ones (prefetch) without waiting.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.errors import Cancelled, CutTreeError
from core.image_io import load_image
from core.jobs import CancelToken, Progress
from core.settings import Settings
from core.tree import Cutter
from gui.segmentation import SegmentFn, Segmented, WarmSegmenter

ImageSource = Union[str, Callable[[], np.ndarray]]   # a file path, or a function giving the pixels


@dataclass
class Job:
    """One image to segment."""

    key: str
    source: ImageSource
    settings: Settings
    cancel: CancelToken = field(default_factory=CancelToken)
    #: set: the job only prepares a cutter for the image's tree of this (mask) shape
    cutter_shape: Optional[tuple[int, int]] = None


class SegmentWorker(QObject):
    """Runs jobs one after another in the worker thread (the Qt event queue is the job queue)."""

    started = Signal(object)                       # Job
    progress = Signal(object, str, float)          # Job, stage, fraction
    finished = Signal(object, object, object)      # Job, image, Segmented
    cutter_ready = Signal(object, object)          # Job (with cutter_shape), Cutter or None
    failed = Signal(object, str)                   # Job, message
    cancelled = Signal(object)                     # Job
    submit = Signal(object)                        # Job (sent by the window, runs here)

    def __init__(self, segment: Optional[SegmentFn] = None) -> None:
        super().__init__()
        self._segment = segment or WarmSegmenter()
        self.submit.connect(self._run)

    @Slot(object)
    def _run(self, job: Job) -> None:
        if job.cancel.is_set():
            self.cancelled.emit(job)
            return
        self.started.emit(job)
        try:
            image = load_image(job.source) if isinstance(job.source, str) else job.source()
            job.cancel.check()
            def progress(stage: str, fraction: float) -> None:
                self.progress.emit(job, stage, fraction)
            if job.cutter_shape is not None:
                cutter = self._prepare_cutter(job, image, progress)
                job.cancel.check()
                self.cutter_ready.emit(job, cutter)
                return
            result: Segmented = self._segment(job.key, image, job.settings, progress, job.cancel)
            job.cancel.check()
        except Cancelled:
            self.cancelled.emit(job)
        except CutTreeError as exc:
            self.failed.emit(job, str(exc))
        except MemoryError:
            self.failed.emit(job, "out of memory while segmenting this image")
        except Exception as exc:  # noqa: BLE001 - any bug must become a message, not a crash
            self.failed.emit(job, f"unexpected error: {exc!r}\n\n{traceback.format_exc(limit=5)}")
        else:
            self.finished.emit(job, image, result)

    def _prepare_cutter(self, job: Job, image: np.ndarray, progress: Progress) -> Optional[Cutter]:
        """The segmenter's own way to a cutter, else a whole segmentation's (a tree of another
        shape has no cutter: its pixels would not match)."""
        prepare = getattr(self._segment, "prepare_cutter", None)
        if prepare is not None:
            return prepare(job.key, image, job.settings, job.cutter_shape, progress, job.cancel)
        result = self._segment(job.key, image, job.settings, progress, job.cancel)
        return result.cutter if result.tree.shape == job.cutter_shape else None


class WorkerThread:
    """Owns the QThread and the worker; `stop()` cancels everything and joins the thread."""

    def __init__(self, segment: Optional[SegmentFn] = None) -> None:
        self.thread = QThread()
        self.thread.setObjectName("cuttree-segmentation")
        self.worker = SegmentWorker(segment)
        self.worker.moveToThread(self.thread)
        self.jobs: dict[str, Job] = {}
        self.thread.start()

    def submit(self, job: Job) -> None:
        old = self.jobs.get(job.key)
        if old is not None:
            old.cancel.cancel()
        self.jobs[job.key] = job
        self.worker.submit.emit(job)

    def cancel(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is not None:
            job.cancel.cancel()

    def is_current(self, job: Job) -> bool:
        """False for a job that was replaced by a newer one for the same image."""
        return self.jobs.get(job.key) is job

    def done(self, job: Job) -> None:
        if self.is_current(job):
            del self.jobs[job.key]

    def busy(self) -> bool:
        return bool(self.jobs)

    def stop(self) -> None:
        for job in self.jobs.values():
            job.cancel.cancel()
        self.thread.quit()
        self.thread.wait()
