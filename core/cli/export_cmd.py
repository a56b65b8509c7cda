"""`export PROJECT --format coco|panoptic|semantic|yolo --out PATH [options]`, built from the format table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.errors import CutTreeError
from core.export.common import project_source
from core.export.formats import FORMATS, Option, export_format, run_export
from core.cli.project_arg import open_project


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the `export` subcommand, one flag per option of the formats in `core.export.formats`."""
    parser = subparsers.add_parser(
        "export", help="export a project: " + ", ".join(FORMATS),
        description="Export every annotated image of a project. The written files are read back "
                    "and compared with the annotations before they replace anything; a set of "
                    "files (PNGs, labels, copied images) replaces the old set in one step.")
    parser.add_argument("project", type=Path, help="project folder (holding project.json)")
    parser.add_argument("--format", choices=list(FORMATS), default="coco",
                        help="; ".join(f"{f.name}: {f.label}" for f in FORMATS.values()))
    parser.add_argument("--out", type=Path, required=True,
                        help="coco/panoptic: the JSON file (panoptic PNGs go to the folder named like it), "
                             "or a dataset folder with --copy-images/--link-images; semantic/yolo: a folder")
    seen: dict[str, list[str]] = {}
    for fmt in FORMATS.values():
        for option in fmt.all_options():
            seen.setdefault(option.key, []).append(fmt.name)
    added: set[str] = set()
    for fmt in FORMATS.values():
        for option in fmt.all_options():
            if option.key not in added:
                added.add(option.key)
                _add_option(parser, option, seen[option.key], len(FORMATS))
    parser.set_defaults(handler=run)


def _add_option(parser: argparse.ArgumentParser, option: Option, formats: list[str], total: int) -> None:
    where = "" if len(formats) == total else f" ({', '.join(formats)})"
    if option.kind == "choice":
        for value, flag in option.flags.items():
            parser.add_argument(flag, dest=option.key, action="store_const", const=value, default=None,
                                help=f"{option.help}: {value}{where}")
    elif option.kind is bool:
        parser.add_argument(option.flag, dest=option.key, action="store_true", default=None,
                            help=option.help + where)
    elif option.kind == "list":
        parser.add_argument(option.flag, dest=option.key, default=None, help=option.help + where,
                            type=lambda text: [v.strip() for v in text.split(",") if v.strip()])
    else:
        parser.add_argument(option.flag, dest=option.key, type=option.kind, default=None,
                            help=f"{option.help}{where} (default {option.default})")


def chosen_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, refused when the chosen format does not take them."""
    fmt = export_format(args.format)
    keys = {o.key for fmt_ in FORMATS.values() for o in fmt_.all_options()}
    given = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    foreign = sorted(set(given) - {o.key for o in fmt.all_options()})
    if foreign:
        raise CutTreeError(f"--format {fmt.name} takes no {', '.join('--' + k.replace('_', '-') for k in foreign)}")
    return given


def run(args: argparse.Namespace) -> int:
    """Run the export; print what was written and skipped; 0 on success, 1 on failure (an image
    skipped because its annotation file is damaged or refused counts as one)."""
    try:
        options = chosen_options(args)
        project = open_project(args.project)
        result = run_export(args.format, project_source(project), args.out, options)
    except CutTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in result.lines():
        print(line)
    if result.unreadable:
        print(f"error: {result.unreadable} images were skipped because their annotation files "
              "could not be read", file=sys.stderr)
        return 1
    return 0
