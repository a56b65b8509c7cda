"""A dataset run's state inside the project folder: the writer's lock and the run journal.

The lock (`segment.lock`, an OS file lock the kernel drops when its process dies, even by
SIGKILL) keeps a second writer (a run, an import, propagate, the window) from writing the same
project at the same time. The journal (`segment-journal.jsonl`)
gets one fsync'ed line per finished or failed image, after the image's tree file is written;
`project.json` is saved only every few hundred images, so after a crash the journal tells which
trees on disk the project does not list yet, and which images failed and why. A torn last line
(a kill mid-append) is ignored: that image is simply segmented again.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, TextIO

from core.atomic_io import atomic_write_text
from core.errors import CutTreeError

LOCK_FILE = "segment.lock"
JOURNAL_FILE = "segment-journal.jsonl"


class ProjectLocked(CutTreeError):
    """Another process is writing the project; the message says which."""


class ProjectLock:
    """An exclusive OS lock on `<project>/segment.lock`, holding who took it (for the message);
    `writer` says what takes it, e.g. "a `cuttree segment` run" or "the CutTree window"."""

    def __init__(self, folder: Path, writer: str = "a `cuttree segment` run") -> None:
        self.path = Path(folder) / LOCK_FILE
        self.writer = writer
        self._handle: Optional[Any] = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ProjectLocked(f"{self.path.parent} is being written by {holder}; wait for it to "
                                f"finish (or close the project there), then try again")
        handle.seek(0)
        handle.truncate()
        handle.write(f"{self.writer}, pid {os.getpid()} on {socket.gethostname()}, started "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Unlock (the file stays: removing it could race with a run that just opened it)."""
        if self._handle is not None:
            self._handle.truncate(0)
            self._handle.close()        # closing drops the lock
            self._handle = None

    def __enter__(self) -> "ProjectLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def existing_project_lock(folder: Path, writer: str) -> "ProjectLock | nullcontext[None]":
    """The writer's lock of a project folder that exists; none for a folder that does not yet
    (nothing to protect, and taking the lock would create it before the input is checked)."""
    return ProjectLock(folder, writer) if Path(folder).is_dir() else nullcontext()


def _try_lock(handle: TextIO) -> bool:
    """A non-blocking exclusive lock on the open file (flock on POSIX, msvcrt on Windows)."""
    try:
        if os.name == "nt":
            import msvcrt
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@dataclass
class JournalRecord:
    """One image's outcome: `key` is the project's image key (relative path or URI)."""

    key: str
    ok: bool
    width: int = 0
    height: int = 0
    message: str = ""

    def to_json(self) -> str:
        data = {"key": self.key, "status": "done" if self.ok else "failed"}
        data.update({"width": self.width, "height": self.height} if self.ok else {"message": self.message})
        return json.dumps(data, ensure_ascii=False)


class RunJournal:
    """Appends records durably; `replay` reads them back (the last record of a key wins)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / JOURNAL_FILE
        self._handle: Optional[TextIO] = None
        self._lock = threading.Lock()

    def replay(self) -> dict[str, JournalRecord]:
        """The latest record per image key; unreadable lines (a torn last append) are skipped."""
        latest: dict[str, JournalRecord] = {}
        for record in self._records():
            latest.pop(record.key, None)      # keep the order of the latest outcome
            latest[record.key] = record
        return latest

    def _records(self) -> Iterator[JournalRecord]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in raw.splitlines():
            try:
                data = json.loads(line)
                yield JournalRecord(str(data["key"]), data["status"] == "done", int(data.get("width", 0)),
                                    int(data.get("height", 0)), str(data.get("message", "")))
            except (ValueError, KeyError, TypeError):
                continue

    def append(self, record: JournalRecord) -> None:
        """Write one line and fsync it (the image's files are already on disk). Thread-safe: the
        driver's writing threads journal their images as they finish, and concurrent fsyncs of
        the one file overlap."""
        with self._lock:
            if self._handle is None:
                self._handle = open(self.path, "a", encoding="utf-8")
                if self._handle.tell():      # a torn line from a killed run must not swallow ours
                    self._handle.write("\n")
            self._handle.write(record.to_json() + "\n")
            self._handle.flush()
            fd = self._handle.fileno()
        os.fsync(fd)

    def compact(self, keep: list[JournalRecord]) -> None:
        """Replace the journal by `keep` (the failures), once `project.json` lists every done image."""
        self.close()
        atomic_write_text(self.path, "".join(r.to_json() + "\n" for r in keep))

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
