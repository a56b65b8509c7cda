"""`export PROJECT --format coco|panoptic|semantic [--polygons] [--include-unlabelled] --out PATH`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import CutTreeError
from core.export.coco import CocoOptions, export_project_coco
from core.export.panoptic import export_project_panoptic
from core.export.semantic import export_project_semantic
from core.project import Project


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the `export` subcommand."""
    parser = subparsers.add_parser(
        "export", help="export a project as COCO instances, COCO panoptic or semantic PNGs",
        description="Export every annotated image of a project. The written files are read back "
                    "and compared with the annotations before they replace anything.")
    parser.add_argument("project", type=Path, help="project folder (holding project.json)")
    parser.add_argument("--format", choices=("coco", "panoptic", "semantic"), default="coco")
    parser.add_argument("--out", type=Path, required=True,
                        help="COCO/panoptic: the JSON file (panoptic PNGs go to the folder named like it); "
                             "semantic: the output folder")
    parser.add_argument("--polygons", action="store_true", help="COCO: polygons instead of RLE (holes are lost)")
    parser.add_argument("--include-unlabelled", action="store_true",
                        help="COCO: export unlabelled regions too, as an extra 'unlabelled' category")
    parser.add_argument("--include-suggested", action="store_true",
                        help="export accepted and suggested labels (see `propagate`); without it only the "
                             "labels the annotator set or accepted")
    parser.add_argument("--merge-stuff", action="store_true",
                        help="COCO: one annotation per stuff category and image")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the export; print what was written and skipped; 0 on success, 1 on failure."""
    try:
        project = Project.open(args.project)
        for problem in project.problems:
            print(f"warning: {problem}", file=sys.stderr)
        if args.format == "coco":
            options = CocoOptions(polygons=args.polygons, include_unlabelled=args.include_unlabelled,
                                  merge_stuff=args.merge_stuff, include_suggested=args.include_suggested)
            result = export_project_coco(project, args.out, options)
        elif args.format == "panoptic":
            result = export_project_panoptic(project, args.out, include_suggested=args.include_suggested)
        else:
            result = export_project_semantic(project, args.out, include_suggested=args.include_suggested)
    except CutTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in result.lines():
        print(line)
    return 0
