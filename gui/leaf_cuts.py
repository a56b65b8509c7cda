"""Cutting a finest region again, off the GUI thread.

A leaf cut re-segments the region from its tokens (40-150 ms at 1024 px, more for big
regions): the labels are computed on a background thread while the window stays live, and
the split is made on the GUI thread when they arrive, provided the tree has not changed in
between (otherwise the labels may no longer fit the region, and the user is told).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

from core.tree import Cutter, SegmentTree


@dataclass
class LeafCut:
    """One request: which region of which tree, at which version of the tree."""

    owner: object            # the image document, handed back untouched
    tree: SegmentTree
    node_id: int
    version: int

    def still_valid(self, tree: Optional[SegmentTree]) -> bool:
        return tree is self.tree and tree.version == self.version and self.node_id in tree.nodes


class LeafCuts(QObject):
    """Runs one cut at a time; `done(request, labels)` or `failed(request, message)` follow on
    the GUI thread (labels may be None: the region cannot be cut)."""

    done = Signal(object, object)
    failed = Signal(object, str)
    _finished = Signal(object, object)      # from the pool thread: (request, future)

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuttree-leaf-cut")
        self.pending: Optional[LeafCut] = None
        self._closed = False
        # always queued: a cut that ends before its callback is added calls the callback on
        # the GUI thread, and the split must still wait for the event loop
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def start(self, owner: object, tree: SegmentTree, node_id: int, cutter: Cutter) -> bool:
        """Begin cutting `node_id`; False while another cut is still running."""
        if self.pending is not None:
            return False
        request = LeafCut(owner, tree, node_id, tree.version)
        self.pending = request
        mask = tree.mask(node_id)
        future = self._pool.submit(cutter, mask)
        future.add_done_callback(lambda f: self._closed or self._finished.emit(request, f))
        return True

    def _deliver(self, request: LeafCut, future: Future) -> None:
        self.pending = None
        try:
            labels: Optional[np.ndarray] = future.result()
        except Exception as exc:  # noqa: BLE001 - any failure of the cut is reported, not raised
            self.failed.emit(request, f"cutting the region failed: {exc}")
            return
        self.done.emit(request, labels)

    def shutdown(self) -> None:
        """Stop taking cuts; one still running finishes on its own and is dropped."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

