"""GUI entry point: `run(argv)` opens the main window (called by main.py with no sub-command).

With no arguments a built-in sample image (skimage.data) is segmented so that the app shows
something useful at once; arguments are image files, folders, or a project folder.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtWidgets import QApplication, QMessageBox

from core.errors import CutTreeError, printable
from core.image_io import list_images
from core.project import PROJECT_FILE
from gui.document import ImageDoc
from gui.main_window import MainWindow
from gui.theme import apply_theme
from gui.xcb_check import xcb_problem

SAMPLES = ("astronaut", "coffee", "chelsea")


def sample_doc(name: str) -> ImageDoc:
    """A built-in skimage.data image as a document."""
    def pixels() -> np.ndarray:
        import skimage.data
        return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    return ImageDoc(f"sample:{name}", f"{name} (sample)", pixels)


def build_window(argv: list[str]) -> MainWindow:
    """The main window on the project and the images and folders named in argv, or the samples.

    A project or image that cannot be opened is reported in a dialog and the window opens
    without it; should anything else go wrong, the window's threads are stopped before the
    error leaves (a running QThread destroyed at exit aborts the process).
    """
    window = MainWindow()
    try:
        _open_arguments(window, argv)
    except (CutTreeError, OSError, ValueError, MemoryError) as exc:
        message = str(exc) if isinstance(exc, CutTreeError) else f"{type(exc).__name__}: {exc}"
        QMessageBox.critical(window, "Cannot open", printable(message))
    except BaseException:
        window.shutdown()
        raise
    return window


def _open_arguments(window: MainWindow, argv: list[str]) -> None:
    paths = [Path(a) for a in argv if not a.startswith("-")]
    projects = [p for p in paths if (p / PROJECT_FILE).exists()]
    if projects:
        window.session.open_project(projects[0])
    shown = {_resolved(Path(doc.key)) for doc in window.docs}     # a project's images open once
    files = [f for p in paths if p not in projects for f in (list_images(p) if p.is_dir() else [p])
             if _resolved(f) not in shown]
    if files:
        window.session.add_paths(files)
    elif not paths:
        window.session.add_images([sample_doc(name) for name in SAMPLES])


def _resolved(path: Path) -> Path:
    """The path with symlinks resolved; a symlink loop stays as given (RuntimeError before 3.13)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def run(argv: list[str]) -> int:
    """Start Qt, open the window, run the event loop; returns the exit code (1, with one message
    naming what to install, when Qt's X11 plugin cannot load)."""
    problem = xcb_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    app: Optional[QApplication] = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CutTree")
    app.setOrganizationName("CutTree")
    window = build_window(argv)
    dark = window.qsettings.value("theme/dark", None)
    apply_theme(None if dark is None else str(dark).lower() == "true")
    window.show()
    return app.exec()
