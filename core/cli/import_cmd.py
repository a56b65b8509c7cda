"""`import COCO_JSON --images DIR --project PATH`: COCO instances or panoptic into a project."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.coco_import import ImportFailed, import_coco
from core.errors import CutTreeError
from core.run_journal import existing_project_lock


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the `import` subcommand."""
    parser = subparsers.add_parser(
        "import", help="import COCO instances or COCO panoptic annotations into a project",
        description="Each annotation becomes a region of its image's tree; malformed entries are "
                    "listed and skipped. The project is created when the folder holds none; in an "
                    "existing project the images are added, or, for images it already has, their "
                    "regions and labels are replaced (its other images are kept). Image, category "
                    "and annotation ids and file names are kept for the exports. Nothing is written "
                    "when nothing could be imported (exit code 1).")
    parser.add_argument("coco_json", type=Path, help="COCO instances or panoptic JSON file")
    parser.add_argument("--images", type=Path, required=True, help="folder the JSON's file_name entries are in")
    parser.add_argument("--project", type=Path, required=True, help="project folder (created if needed)")
    parser.add_argument("--panoptic-pngs", type=Path, default=None,
                        help="panoptic PNG folder (default: the folder named like the JSON)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the import; print the summary and every skipped entry; 0 on success, 1 on failure."""
    try:
        with existing_project_lock(args.project, "`cuttree import`"):
            result = import_coco(args.coco_json, args.images, args.project, args.panoptic_pngs)
    except ImportFailed as exc:
        for line in exc.result.lines()[1:]:
            print(line, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CutTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in result.lines():
        print(line)
    return 0
