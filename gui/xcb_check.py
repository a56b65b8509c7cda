"""Before Qt starts on X11: name every system library its xcb platform plugin cannot load.

Qt aborts naming one library (libxcb-cursor0) and, once that is installed, the next; the
plugin's `ldd` lists all of them at once. Pure functions and a subprocess; imports no Qt.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping, Optional

#: the runtime packages Qt 6's xcb plugin links against beyond a base X11 install (Debian/Ubuntu
#: names; the README lists them)
XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
                "libxcb-randr0", "libxcb-shape0", "libxcb-xkb1", "libxkbcommon-x11-0")
#: libraries whose Debian package is not named after the soname (Debian policy 8.1)
_PACKAGE_OF = {"libglib-2.0": "libglib2.0-0", "libgthread-2.0": "libglib2.0-0", "libgcc_s": "libgcc-s1"}


def wants_xcb(env: Mapping[str, str], platform: str) -> bool:
    """Whether Qt will use its xcb plugin: on Linux, asked for first or chosen by default."""
    if not platform.startswith("linux"):
        return False
    requested = env.get("QT_QPA_PLATFORM", "")
    if requested:
        return requested.split(";")[0].split(":")[0] == "xcb"
    return not (env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland")


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames `ldd` reports as 'not found', each once, in its order."""
    found = [line.split("=>")[0].strip() for line in ldd_output.splitlines() if "=> not found" in line]
    return list(dict.fromkeys(found))


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships a library: its name and major version, with a dash
    between when the name ends in a digit (libxcb-cursor.so.0 -> libxcb-cursor0)."""
    stem, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    if stem in _PACKAGE_OF:
        return _PACKAGE_OF[stem]
    stem = stem.lower()
    return f"{stem}{'-' if stem[-1].isdigit() else ''}{version}"


def plugin_path() -> Optional[Path]:
    """PySide6's xcb platform plugin, or None when PySide6 is not installed."""
    try:
        import PySide6
    except ImportError:
        return None
    return Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def run_ldd(path: Path) -> str:
    """`ldd path` output ('' when ldd is missing or fails)."""
    try:
        return subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def xcb_problem(env: Mapping[str, str] = os.environ, platform: str = sys.platform,
                plugin: Optional[Path] = None, ldd: Optional[Callable[[Path], str]] = None) -> Optional[str]:
    """Why the window cannot start on X11 (one message naming what to install), or None."""
    if not wants_xcb(env, platform):
        return None
    plugin = plugin or plugin_path()
    if plugin is None or not plugin.is_file():
        return None
    missing = missing_libraries((ldd or run_ldd)(plugin))
    if missing:
        packages = " ".join(dict.fromkeys(debian_package(name) for name in missing))
        return (f"error: the window cannot start: Qt's X11 plugin {plugin} needs system libraries that "
                f"are not installed: {', '.join(missing)}. On Debian/Ubuntu install them with: "
                f"sudo apt-get install {packages}")
    if not env.get("DISPLAY") and not env.get("QT_QPA_PLATFORM"):
        return ("error: the window cannot start: no X display (DISPLAY is not set); run it on a desktop, "
                "or use a sub-command (python main.py segment ...), which needs no window")
    return None
