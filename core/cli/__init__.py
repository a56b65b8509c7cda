"""Command-line interface: `python main.py <command> ...`; each command lives in its own module."""
from __future__ import annotations

import argparse
import importlib
from typing import Optional, Sequence

COMMAND_MODULES = ("segment_cmd", "export_cmd", "import_cmd", "evaluate_cmd", "propagate_cmd")
#: the sub-command names (each module registers the one it is named after)
COMMANDS = tuple(name.removesuffix("_cmd") for name in COMMAND_MODULES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cuttree", description="CutTree: zero-shot hierarchical segmentation and annotation. "
                                    "Without a command, the annotation window opens "
                                    "(on the images, folders or project given).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"core.cli.{name}").register(sub)
    return parser


def run(argv: Optional[Sequence[str]] = None) -> int:
    """Parse and run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    return int(args.handler(args))
