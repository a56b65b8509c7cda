"""Where an export writes: a folder of files built in a staging sibling and swapped in whole.

A `FileSet` stages every file of an export (PNGs, JSON, labels, copied images) in a hidden
sibling folder and publishes them together with `atomic_io.replace_folder`, so a kill leaves
the old set or the new one, never a mix (issue 13). A folder is only replaced when it is absent,
empty, or marked as a CutTree export (`MARKER`): files the user put there are never deleted.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Optional

from core.atomic_io import atomic_write_text, replace_folder, staging_folder
from core.export import ExportError

MARKER = ".cuttree-export"


def check_replaceable(target: Path) -> None:
    """Refuse to replace anything but a missing or empty folder or an earlier CutTree export."""
    target = Path(target)
    if not os.path.lexists(target):
        return
    if not target.is_dir() or target.is_symlink():
        raise ExportError(f"{target}: exists and is not a folder; choose another output")
    if any(True for _ in target.iterdir()) and not (target / MARKER).is_file():
        raise ExportError(f"{target}: the folder holds files CutTree did not write; "
                          "choose a new or empty folder (an earlier CutTree export is replaced)")


class FileSet:
    """Files written under a staging folder and published as `target` by `commit`."""

    def __init__(self, target: Path, kind: str) -> None:
        self.target = Path(target)
        self.kind = kind
        check_replaceable(self.target)
        self.root = staging_folder(self.target)

    def path(self, relative: str) -> Path:
        """The staged path of `relative` (its folders are made)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self) -> None:
        """Publish the staged files as `target` in one step (the old folder is removed)."""
        check_replaceable(self.target)
        atomic_write_text(self.root / MARKER, f"{self.kind} export written by CutTree at "
                                              f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        replace_folder(self.root, self.target)

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, kind: Optional[type], exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if exc is not None:
            self.abort()
