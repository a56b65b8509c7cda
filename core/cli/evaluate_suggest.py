"""`evaluate camvid --labelled K[,K...]`: label suggestions from K labelled frames, scored on the rest."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.camvid import camvid_frames
from core.cli.settings_args import settings_from_args
from core.errors import CutTreeError
from core.jobs import Progress
from core.pipeline import Segmenter
from core.suggestion_eval import evaluate_suggestions, format_table, segment_frames

#: where the shared data lives next to a checkout (the repository's parent holds shared/)
DEFAULT_CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "camvid"


def parse_counts(text: str) -> list[int]:
    """Numbers of labelled frames from '1,3,10'."""
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise CutTreeError(f"--labelled {text!r} is not a list of frame counts like 1,3,10") from exc
    if not counts or any(k < 1 for k in counts):
        raise CutTreeError("--labelled counts must be 1 or more")
    return counts


def run_suggestions(args: argparse.Namespace, progress: Progress) -> int:
    """Segment the split, evaluate suggestions at each K, print the tables; 0 or 1."""
    try:
        settings = settings_from_args(args)
        counts = parse_counts(args.labelled)
        frames = camvid_frames(args.data or DEFAULT_CAMVID, args.split)
        frames = frames[:args.limit] if args.limit > 0 else frames
        if max(counts) >= len(frames):
            raise CutTreeError(f"--labelled {max(counts)} leaves no frame to suggest for ({len(frames)} frames)")
        segmenter = Segmenter(settings)
        started = time.perf_counter()
        trees = segment_frames(frames, lambda image: segmenter.cut(image, segmenter.encode(image)),
                               progress)
        seconds = (time.perf_counter() - started) / len(frames)
        results = evaluate_suggestions(trees, counts)
    except CutTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    title = (f"CamVid {args.split} label suggestions: {len(frames)} frames, encoder {settings.encoder}, "
             f"method {settings.cut_method}, tau {settings.tau}, {seconds:.2f} s/frame to segment")
    print(format_table(results, title))
    return 0

