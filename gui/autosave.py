"""Autosave writes off the GUI thread: the tree is encoded on the GUI thread (a consistent
snapshot, about a millisecond), the file is compressed and written on a background thread
(15-20 ms for a 1024x1024 image), one file after another in the order the edits came."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional

from PySide6.QtCore import QObject, Signal

from core.atomic_io import atomic_write_npz
from core.project import Project
from core.tree import History, SegmentTree
from core.tree_file import tree_arrays


class BackgroundWriter(QObject):
    """`save(image_id, tree, history)` for `core.project.Autosaver`; `failed` arrives on the GUI thread."""

    failed = Signal(int, str)          # image id, message

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project = project
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuttree-autosave")
        self._futures: list[Future] = []
        self._queued: dict[int, Future] = {}     # the latest write of each image

    def save(self, image_id: int, tree: SegmentTree, history: Optional[History] = None) -> None:
        """Snapshot the tree now; write it in the background."""
        arrays = tree_arrays(tree, history)
        queued = self._queued.get(image_id)
        if queued is not None:
            queued.cancel()           # not started yet: this newer snapshot supersedes it
        future = self._pool.submit(atomic_write_npz, self.project.annotation_path(image_id), arrays)
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
        """Block until every write has finished; raise the first error (for close and save)."""
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
