"""Autosave, its one owner: every edit is saved at once, off the GUI thread.

`Project.snapshot` encodes the tree on the GUI thread (a consistent copy, about a millisecond);
`Project.write` compresses and writes it on one background thread (15-20 ms at 1024x1024), one
file after another in the order the edits came. A snapshot whose write has not started yet is
replaced by a newer one of the same image, so a slider drag does not queue a write per step.
While it is open it holds the project's writer lock (`core.run_journal.ProjectLock`), so a
`cuttree segment` run, an import or propagate cannot write the project under the window, nor
the window under them.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Optional

from PySide6.QtCore import QObject, Signal

from core.project import Project
from core.run_journal import ProjectLock
from core.tree import History, SegmentTree


class Autosave(QObject):
    """Writes one project's annotation files; `failed(image id, message)` arrives on the GUI thread.
    Raises `ProjectLocked` when another process is writing the project."""

    failed = Signal(int, str)

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project = project
        self._lock = ProjectLock(project.folder, "the CutTree window")
        self._lock.acquire()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuttree-autosave")
        self._futures: list[Future] = []
        self._queued: dict[int, Future] = {}     # the latest write of each image

    def save(self, image_id: int, tree: SegmentTree, history: Optional[History] = None,
             extra: Optional[dict[str, Any]] = None) -> None:
        """Snapshot the tree now; write it in the background."""
        snapshot = self.project.snapshot(image_id, tree, history, extra)
        queued = self._queued.get(image_id)
        if queued is not None:
            queued.cancel()           # not started yet: this newer snapshot supersedes it
        future = self._pool.submit(self.project.write, snapshot)
        future.add_done_callback(lambda done: self._report(image_id, done))
        self._queued[image_id] = future
        self._futures = [f for f in self._futures if not f.done()] + [future]

    def _report(self, image_id: int, future: Future) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self.failed.emit(image_id, str(error))    # a queued signal: handled on the GUI thread

    def idle(self) -> bool:
        """Every write so far has finished."""
        return all(f.done() for f in self._futures)

    def wait(self) -> None:
        """Block until every write has finished; raise the first error (for save, close, switch)."""
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.cancelled():
                future.result()

    def close(self) -> None:
        """Finish every write, then let other writers have the project."""
        self._pool.shutdown(wait=True)
        self._lock.release()
