"""Label suggestions kept up to date off the GUI thread (issue 14, decision 0406).

After an edit the session asks for a refresh; once no new request came for QUIET_MS (a burst
of edits, a slider drag, is one refresh, and the refresh does not compete for the CPU and the
interpreter lock with the edits themselves), the GUI thread takes reading copies of the trees
that changed (`SegmentTree.reading_copy`, about a millisecond; they share the trees' atom
maps, which edits replace rather than write into), and one background thread takes their labels in, fits the
classifier and suggests for every image, the shown one first. Each image's suggestions come
back on the GUI thread (`arrived`) as soon as they are made; requests made meanwhile are
coalesced into one more run, which stops the running one after its current image.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Hashable, Optional, Sequence

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from core.suggest import Suggester
from core.tree import SegmentTree, Suggestion

QUIET_MS = 150          # a refresh starts once requests have stopped for this long (decision 0406)
Trees = Callable[[], Sequence[tuple[Hashable, SegmentTree]]]


class SuggestionRefresher(QObject):
    """`request(trees)`: `trees()` gives (key, tree) pairs, shown image first, when the refresh
    starts; `arrived(key, tree, suggestions)` follows on the GUI thread for each (`tree` is the
    live tree the copy was made of)."""

    arrived = Signal(object, object, object)       # key, live tree, {node id: Suggestion}
    idle_again = Signal()                          # no run is going on or waiting
    failed = Signal(str)                           # a run raised (a message for the status bar)
    _delivered = Signal(object, object, object)    # from the pool thread
    _run_ended = Signal(object)                    # from the pool thread: the run's future

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuttree-suggest")
        self._suggester = Suggester()              # touched only on the pool thread
        self._copies: dict[Hashable, tuple[tuple[int, int, int], SegmentTree]] = {}
        self._running: Optional[Future] = None
        self._stop = threading.Event()
        self._waiting: Optional[Trees] = None
        self._trees: Optional[Trees] = None
        self._closed = False
        self._quiet = QTimer(self, singleShot=True, interval=QUIET_MS)
        self._quiet.timeout.connect(self._begin)
        self._delivered.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._run_ended.connect(self._ended, Qt.ConnectionType.QueuedConnection)

    def request(self, trees: Trees) -> None:
        """Suggest again for these images (their labels train the model), once requests stop."""
        if not self._closed:
            self._trees = trees
            self._quiet.start()

    def busy(self) -> bool:
        """A refresh is waiting for quiet, running, or waiting for the running one to stop."""
        return self._quiet.isActive() or self._running is not None or self._waiting is not None

    def _begin(self) -> None:
        trees, self._trees = self._trees, None
        if trees is None or self._closed:
            return
        if self._running is not None:        # stop it after its current image, then run again
            self._waiting = trees
            self._stop.set()
        else:
            self._start(trees)

    def _start(self, trees: Trees) -> None:
        pairs = list(trees())
        copies = [(key, tree, self._copy(key, tree)) for key, tree in pairs]
        self._copies = {key: self._copies[key] for key, _ in pairs}
        self._stop = threading.Event()
        self._running = self._pool.submit(self._run, copies, self._stop)
        self._running.add_done_callback(lambda f: self._closed or self._run_ended.emit(f))

    def _copy(self, key: Hashable, tree: SegmentTree) -> SegmentTree:
        """The tree's reading copy, made again only when the tree changed (the suggester then
        recomputes only that image's examples)."""
        stamp = (id(tree), tree.version, tree.atom_version)
        old = self._copies.get(key)
        if old is not None and old[0] == stamp:
            return old[1]
        copy = tree.reading_copy()
        self._copies[key] = (stamp, copy)
        return copy

    def _run(self, copies: list[tuple[Hashable, SegmentTree, SegmentTree]], stop: threading.Event) -> None:
        """Pool thread: learn from every image's labels, then suggest image by image."""
        suggester = self._suggester
        suggester.keep_only({key for key, _, _ in copies})
        for key, _, copy in copies:
            suggester.update(key, copy)
        suggester.fit()
        for key, tree, copy in copies:
            if stop.is_set():
                return
            found: dict[int, Suggestion] = dict(suggester.suggest(copy))
            self._delivered.emit(key, tree, found)

    def _deliver(self, key: Hashable, tree: SegmentTree, found: dict[int, Suggestion]) -> None:
        if not self._closed:             # answers queued before a shutdown are dropped
            self.arrived.emit(key, tree, found)

    def _ended(self, future: Future) -> None:
        self._running = None
        if self._closed:
            return
        error = future.exception()
        if error is not None:                # a bug must not stop suggestions for good: say it
            self.failed.emit(f"label suggestions failed: {error!r}")
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._start(waiting)
        else:
            self.idle_again.emit()

    def shutdown(self) -> None:
        """Stop taking requests; a run still going on stops after its image and is dropped."""
        self._closed = True
        self._quiet.stop()
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
