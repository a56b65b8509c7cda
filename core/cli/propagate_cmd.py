"""`propagate PROJECT [--min-confidence C] [--accept]`: label suggestions for a whole project."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import CutTreeError
from core.cli.project_arg import open_project
from core.run_journal import existing_project_lock
from core.propagate import propagate_project
from core.suggest import DEFAULT_MIN_CONFIDENCE


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the `propagate` subcommand."""
    parser = subparsers.add_parser(
        "propagate", help="suggest labels for every unlabelled region of a project from its labelled ones",
        description="Train on every labelled region of the project and suggest a category, with a "
                    "confidence, for every unlabelled region; labels and rejected suggestions are never "
                    "changed. Prints one summary line per image.")
    parser.add_argument("project", type=Path, help="project folder (holding project.json)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"confidence counted (and accepted with --accept) (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--accept", action="store_true",
                        help="accept the shown regions' suggestions at or above --min-confidence "
                             "(an undoable edit in each image's history)")
    parser.add_argument("--merge-siblings", action="store_true",
                        help="with --accept: sibling regions suggested the same category become one "
                             "region (fewer, larger annotations; two cars side by side become one)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Propagate and print the summary; 0 on success, 1 on a user-facing error."""
    try:
        if not 0.0 <= args.min_confidence <= 1.0:
            raise CutTreeError(f"--min-confidence {args.min_confidence} must lie in [0, 1]")
        if args.merge_siblings and not args.accept:
            raise CutTreeError("--merge-siblings merges accepted regions: give --accept too")
        with existing_project_lock(args.project, "`cuttree propagate`"):   # a missing one: open_project says so
            project = open_project(args.project)
            result = propagate_project(project, args.min_confidence, args.accept, as_one=args.merge_siblings)
    except CutTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in result.lines():
        print(line)
    return 0
