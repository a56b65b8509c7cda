"""`evaluate bsds|camvid --data DIR [--oracle | --labelled K --split val --limit N --tau-grid ... and the
segment settings]`."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import CutTreeError
from core.evaluate import (LabelsAt, bsds_images, camvid_cuts, default_granularities, evaluate_bsds,
                           format_oracle, format_table, oracle_curve)
from core.jobs import CancelToken
from core.cli.evaluate_suggest import run_suggestions
from core.cli.settings_args import add_settings_arguments, settings_from_args
from core.settings import Settings

#: where the shared data lives next to a checkout (the repository's parent holds shared/)
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_DATA = {"bsds": SHARED_DATA / "bsds500", "camvid": SHARED_DATA / "camvid"}


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the `evaluate` subcommand."""
    parser = subparsers.add_parser(
        "evaluate", help="score segmentation hierarchies on a benchmark",
        description="bsds: segment every image of a BSDS500 split and score the hierarchy against "
                    "all human segmentations: segmentation covering, probabilistic Rand index and "
                    "variation of information at ODS (one granularity for the dataset) and OIS "
                    "(best granularity per image), as in Arbelaez et al. 2011. camvid --oracle: "
                    "give each region of every CamVid frame its majority class and print the "
                    "mIoU against the number of regions per frame over the granularities; "
                    "camvid without --oracle: label suggestions (see --labelled).")
    parser.add_argument("benchmark", choices=tuple(DEFAULT_DATA),
                        help="bsds: the region benchmark; camvid: the oracle (--oracle) or label "
                             "suggestions (--labelled)")
    parser.add_argument("--data", type=Path, default=None,
                        help="BSDS500 folder with images/ and groundTruth/, or CamVid folder with "
                             f"<split>/ and <split>annot/ (default {SHARED_DATA}/bsds500 or /camvid)")
    parser.add_argument("--oracle", action="store_true",
                        help="camvid: score the oracle labelling (each region its majority class)")
    parser.add_argument("--labelled", default="1,3,10",
                        help="camvid: how many frames are labelled, e.g. 3 or 1,3,10 (default 1,3,10)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N images (0 = all)")
    parser.add_argument("--tau-grid", default="",
                        help="granularities to sweep: 'a,b,c' or 'start:stop:count' "
                             "(default 40 steps up to tau_max)")
    add_settings_arguments(parser)
    parser.set_defaults(handler=run)


def parse_grid(text: str, tau_max: float) -> list[float]:
    """Granularities from 'a,b,c' or 'start:stop:count'; empty text gives the default grid."""
    if not text:
        return default_granularities(tau_max)
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            grid = [float(g) for g in np.linspace(float(start), float(stop), int(count))]
        else:
            grid = [float(g) for g in text.split(",")]
    except ValueError as exc:
        raise CutTreeError(f"--tau-grid {text!r} is neither 'a,b,c' nor 'start:stop:count'") from exc
    if not grid or any(not 0 <= g <= tau_max for g in grid):
        raise CutTreeError(f"--tau-grid values must lie in [0, tau_max={tau_max}]")
    return grid


def pipeline_hierarchy(settings: Settings, cancel: Optional[CancelToken] = None):
    """image -> labels_at(granularity), segmenting with the pipeline once per image."""
    from core.pipeline import segment

    def hierarchy(image: np.ndarray) -> LabelsAt:
        tree = segment(image, settings, None, cancel)

        def labels_at(granularity: float) -> np.ndarray:
            tree.set_granularity(granularity)
            return tree.frontier_labels()[0]
        return labels_at
    return hierarchy


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the table; 0 on success, 1 on a user-facing error."""
    if args.benchmark == "camvid" and not args.oracle:
        return run_suggestions(args, _print_progress)
    try:
        settings = settings_from_args(args)
        grid = sorted(set(parse_grid(args.tau_grid, settings.tau_max)) | {settings.tau})
        if args.limit < 0:
            raise CutTreeError("--limit must be 0 (all) or a positive number of images")
        data = args.data or DEFAULT_DATA[args.benchmark]
        if args.benchmark == "camvid":
            print(run_camvid_oracle(args, data, settings, grid))
        else:
            print(run_bsds(args, data, settings, grid))
    except CutTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_bsds(args: argparse.Namespace, data: Path, settings: Settings, grid: list[float]) -> str:
    """The BSDS500 region-benchmark table."""
    items = bsds_images(data, args.split)
    items = items[:args.limit] if args.limit else items
    started = time.perf_counter()
    summary, _ = evaluate_bsds(items, pipeline_hierarchy(settings), grid, progress=_print_progress,
                               default=settings.tau)
    seconds = (time.perf_counter() - started) / len(items)
    title = (f"BSDS500 {args.split}: encoder {settings.encoder}, method {settings.cut_method}, "
             f"{len(grid)} granularities, untuned = at tau {settings.tau}, {seconds:.2f} s/image")
    return format_table(summary, title)


def run_camvid_oracle(args: argparse.Namespace, data: Path, settings: Settings,
                      grid: list[float]) -> str:
    """The CamVid oracle curve and per-class table."""
    from core.camvid import camvid_frames
    frames = camvid_frames(data, args.split)
    frames = frames[:args.limit] if args.limit else frames
    started = time.perf_counter()
    curve = oracle_curve(camvid_cuts(frames, pipeline_hierarchy(settings), grid,
                                     progress=_print_progress), grid)
    seconds = (time.perf_counter() - started) / len(frames)
    title = (f"CamVid {args.split} oracle: encoder {settings.encoder}, method {settings.cut_method}, "
             f"{len(grid)} granularities, default tau {settings.tau}, {seconds:.2f} s/frame")
    return title + "\n" + format_oracle(curve, settings.tau)


def _print_progress(stage: str, fraction: float) -> None:
    print(f"\r[{fraction:5.0%}] {stage:<40}", end="" if fraction < 1 else "\n", file=sys.stderr, flush=True)
