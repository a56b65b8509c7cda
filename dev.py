#!/usr/bin/env python3
"""Set up and run CutTree with nothing but Python installed.

    python dev.py app [ARGS...]    create .venv if missing, install, start the app (ARGS go to main.py)
    python dev.py test [ARGS...]   same set-up, then run the whole test suite (ARGS go to pytest)

The virtual environment is reinstalled only when pyproject.toml changes.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".cuttree-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_environment() -> Path:
    """Create the virtual environment and install the project with its dev tools if needed."""
    if sys.version_info < (3, 10):
        sys.exit(f"CutTree needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    python = venv_python()
    if not python.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print("installing CutTree and its dependencies (first run takes a few minutes)", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-e", f"{ROOT}[dev]"], check=True)
        STAMP.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("app", "test"):
        print(__doc__)
        return 2
    python = ensure_environment()
    if argv[0] == "app":
        command = [str(python), str(ROOT / "main.py"), *argv[1:]]
    else:
        command = [str(python), "-m", "pytest", *argv[1:]]
    return subprocess.run(command, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
