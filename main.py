"""CutTree entry point: no arguments open the annotation window; sub-commands run headless."""
from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("--gui"):
        from gui.app import run as run_gui
        return run_gui(args)
    from core.cli import run as run_cli
    return run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
