"""CutTree entry point: a sub-command (segment, export, import, evaluate) runs headless; anything
else (nothing, or images, folders and a project) opens the annotation window on it."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from core.cli import COMMANDS, run as run_cli
    if args and (args[0] in COMMANDS or args[0] in ("-h", "--help")):
        return run_cli(args)
    missing = [a for a in args if not a.startswith("-") and not Path(a).exists()]
    if missing:
        print(f"error: {missing[0]!r} is neither a command ({', '.join(COMMANDS)}) "
              f"nor an image, folder or project", file=sys.stderr)
        return 2
    from gui.app import run as run_gui
    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
