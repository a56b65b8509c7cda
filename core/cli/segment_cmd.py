"""`segment IMAGES_OR_DIRS_OR_MANIFESTS [--project P] [--out DIR] [--engine local|ray ...]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from core.cli.settings_args import add_settings_arguments, settings_from_args
from core.dataset_run import RunOptions, print_summary, run_dataset
from core.engines import ENGINES, ClusterOptions
from core.errors import CutTreeError, printable
from core.image_io import IMAGE_EXTENSIONS
from core.image_sources import collect_sources
from core.project import PROJECT_FILE, Project
from core.settings import Settings


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser(
        "segment", help="segment images into a project and/or label maps, overlays and COCO files",
        description="Segment each image. With --project, each image's tree is saved into the project "
                    "(created if missing) as soon as it is done: an interrupted run keeps what it "
                    "finished and the next run skips it. With --out, per image write STEM_labels.png "
                    "(segment index per pixel), STEM_overlay.png and STEM_coco.json (class-agnostic "
                    "COCO instances, compressed RLE). Images larger than max_mask_side are segmented at "
                    "that size; labels and COCO masks are written at full size, the overlay at the "
                    "working size. A file that cannot be read or written is reported and skipped; the "
                    "exit code is 1 when any image failed.")
    parser.add_argument("inputs", nargs="+", type=Path,
                        help="image files, folders of images, or manifests (.txt/.lst: one path or URI "
                             "per line; URIs such as s3:// are read by the workers)")
    parser.add_argument("--project", type=Path, help="project folder to create or extend")
    parser.add_argument("--out", type=Path, help="folder for the per-image files (created if missing)")
    parser.add_argument("--recursive", action="store_true", help="look into sub-folders too")
    parser.add_argument("--redo", action="store_true", help="segment images the project already has again")
    parser.add_argument("--retry-failed", action="store_true",
                        help="try again the images an earlier run recorded as failed")
    g = parser.add_argument_group("engine")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this process (decoding on a thread); ray: a Ray cluster "
                        "(pip install 'cuttree[cluster]')")
    g.add_argument("--address", help="ray: the cluster to join (auto, or HOST:PORT); "
                                     "default: start Ray on this machine")
    g.add_argument("--workers", type=int, help="ray: number of workers (default: as resources allow)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs per worker (e.g. 1 or 0.5)")
    g.add_argument("--cpus-per-worker", type=float,
                   help="CPU threads per worker (ray default 1; local default: all)")
    g.add_argument("--batch-size", type=int, default=1, help="ray: images per batch sent to a worker")
    add_settings_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.project is None and args.out is None:
        print("error: say where results go: --project P, --out DIR, or both", file=sys.stderr)
        return 2
    for name in ("workers", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1, got {value}", file=sys.stderr)
            return 2
    try:
        settings = settings_from_args(args, base=project_settings(args.project))
        sources = collect_sources(args.inputs, args.recursive)
        if not sources:
            print(f"error: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})", file=sys.stderr)
            return 2
        summary = run_dataset(sources, settings, run_options(args))
    except CutTreeError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the finished images are saved; run the same command again to go on",
              file=sys.stderr)
        return 130
    target = " and ".join(str(p) for p in (args.project, args.out) if p is not None)
    print_summary(summary, target, settings)
    return 1 if summary.failed else 0


def project_settings(folder: Optional[Path]) -> Optional[Settings]:
    """An existing project's settings: the options given on the command line change only those."""
    if folder is None or not (folder / PROJECT_FILE).is_file():
        return None
    return Project.open(folder).settings


def run_options(args: argparse.Namespace) -> RunOptions:
    """RunOptions from the parsed command line."""
    cpus = args.cpus_per_worker
    cluster = ClusterOptions(address=args.address, workers=args.workers,
                             gpus_per_worker=args.gpus_per_worker,
                             cpus_per_worker=1.0 if cpus is None else cpus, batch_size=args.batch_size)
    threads = None if cpus is None else max(1, int(cpus))
    return RunOptions(project=args.project, out=args.out, redo=args.redo, retry_failed=args.retry_failed,
                      engine=args.engine, cluster=cluster, threads=threads)
