"""Progress reporting and cancellation for long work (shared by CLI, GUI worker and pipeline)."""
from __future__ import annotations

import threading
from typing import Callable, Optional

from core.errors import Cancelled

#: progress(stage, fraction): stage is a short user-facing name, fraction in [0, 1].
Progress = Callable[[str, float], None]


class CancelToken:
    """A thread-safe flag the GUI sets and long-running code polls with `check()`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise Cancelled if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled()


def check_cancel(cancel: Optional[CancelToken]) -> None:
    """Raise Cancelled if `cancel` is set; a None token never cancels."""
    if cancel is not None:
        cancel.check()


def report(progress: Optional[Progress], stage: str, fraction: float) -> None:
    """Call `progress` if given."""
    if progress is not None:
        progress(stage, min(1.0, max(0.0, float(fraction))))
