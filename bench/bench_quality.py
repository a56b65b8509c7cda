"""Region quality of the weight-free pipeline: BSDS500 val and the CamVid oracle, variants side by side.

Variants (each a Settings plus pipeline switches, run in one process, interleaved per image so
that the machine's load drifts alike for all):
  specks   the default before decision 0007: weak specks absorbed, split costs linear in the
           walk's ratio, tree down to tau 0.8 (ratio 0.4)
  after    the default now: costs logarithmic above the default, tree down to tau 0.9
  nospecks the default before decision 0006: no speck absorption (else as specks)
  contour  the opt-in contour method: walk to the default granularity, contour merges below
  atomwalk the opt-in atom walk (decision 0008), its tree computed to granularity 1

Prints BSDS covering / PRI / VoI (ODS, OIS, at the default granularity), the CamVid oracle
mIoU against regions per frame over the granularities with the per-class table, seconds per
image, and end-to-end seconds for the skimage astronaut and cat photos at 1024x768.
Run: .venv/bin/python bench/bench_quality.py [--bsds-limit N] [--camvid-limit N] [--variants ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.cut.walk  # noqa: E402
import core.refine  # noqa: E402
from core.camvid import camvid_frames  # noqa: E402
from core.cli.evaluate_cmd import DEFAULT_DATA  # noqa: E402
from core.evaluate import (FrameCuts, OracleAccumulator, resize_labels, bsds_images,  # noqa: E402
                           default_granularities, format_oracle, format_table,
                           load_human_segmentations, score_hierarchy, summarise)
from core.image_io import load_image  # noqa: E402
from core.pipeline import segment  # noqa: E402
from core.settings import Settings  # noqa: E402

SPECK_AREA = core.refine.SPECK_AREA
RATIO_COST = core.cut.walk.ratio_cost


def linear_cost(ratio: float) -> float:
    """The walk's split cost before decision 0007: linear in the ratio over the whole range."""
    return core.cut.walk.REFERENCE_GRANULARITY * ratio / core.cut.walk.AUTO_RATIO


#: name: (settings, absorb specks, split cost)
VARIANTS = {"specks": (Settings(method="walk", tau_max=0.8), True, linear_cost),
            "after": (Settings(method="walk"), True, RATIO_COST),
            "nospecks": (Settings(method="walk", tau_max=0.8), False, linear_cost),
            "contour": (Settings(method="contour"), True, RATIO_COST),
            "atomwalk": (Settings(method="atomwalk", tau_max=1.0), True, RATIO_COST)}


def segmented(name: str, image: np.ndarray):
    """(labels_at, seconds) of one variant on one image."""
    settings, specks, cost = VARIANTS[name]
    core.refine.SPECK_AREA = SPECK_AREA if specks else 0.0
    core.cut.walk.ratio_cost = cost
    started = time.perf_counter()
    tree = segment(image, settings)
    seconds = time.perf_counter() - started

    def labels_at(granularity: float) -> np.ndarray:
        tree.set_granularity(granularity)
        return tree.frontier_labels()[0]
    return labels_at, seconds


def deepest(names: list[str]) -> float:
    """The largest tau_max of the variants: the granularity grid reaches every variant's finest."""
    return max(VARIANTS[n][0].tau_max for n in names)


def bench_bsds(names: list[str], limit: int) -> None:
    items = bsds_images(DEFAULT_DATA["bsds"], "val")
    items = items[:limit] if limit else items
    grid = sorted(set(default_granularities(deepest(names))) | {Settings.tau})
    scored = {n: [] for n in names}
    seconds = {n: 0.0 for n in names}
    for index, item in enumerate(items):
        print(f"\rBSDS {index + 1}/{len(items)}", end="", file=sys.stderr, flush=True)
        image, humans = load_image(item.image), load_human_segmentations(item.truth)
        for name in names:
            labels_at, s = segmented(name, image)
            seconds[name] += s
            scored[name].append(score_hierarchy(item.name, labels_at, humans, grid))
    print(file=sys.stderr)
    for name in names:
        title = (f"BSDS500 val, {name}: {len(grid)} granularities, untuned = at tau {Settings.tau}, "
                 f"{seconds[name] / len(items):.2f} s/image to segment")
        print(format_table(summarise(scored[name], grid, Settings.tau), title) + "\n")


def bench_camvid(names: list[str], limit: int) -> None:
    frames = camvid_frames(DEFAULT_DATA["camvid"], "val")
    frames = frames[:limit] if limit else frames
    grid = sorted(set(default_granularities(deepest(names), round(40 * deepest(names)))) | {Settings.tau})
    acc = {n: OracleAccumulator(grid) for n in names}
    seconds = {n: 0.0 for n in names}
    for index, frame in enumerate(frames):
        print(f"\rCamVid {index + 1}/{len(frames)}", end="", file=sys.stderr, flush=True)
        image, truth = load_image(frame.image), frame.labels()
        for name in names:
            labels_at, s = segmented(name, image)
            seconds[name] += s
            acc[name].add(FrameCuts(frame.name, truth, [resize_labels(labels_at(g), truth.shape) for g in grid]))
    print(file=sys.stderr)
    for name in names:
        print(f"CamVid val oracle, {name}: {seconds[name] / len(frames):.2f} s/frame to segment")
        print(format_oracle(acc[name].curve(), Settings.tau) + "\n")


def bench_photos(names: list[str], repeats: int) -> None:
    import skimage.data
    from PIL import Image
    print(f"{'photo 1024x768':<16}" + "".join(f"{n + ' s':>12}{n + ' regions':>16}{'specks':>8}" for n in names))
    for photo in ("astronaut", "chelsea"):
        image = np.asarray(Image.fromarray(getattr(skimage.data, photo)()).resize((1024, 768)))
        best = {n: np.inf for n in names}
        shown = {}
        for _ in range(repeats):
            for name in names:
                labels_at, s = segmented(name, image)
                best[name] = min(best[name], s)
                shown[name] = np.bincount(labels_at(Settings.tau).ravel())
        print(f"{photo:<16}" + "".join(
            f"{best[n]:>12.2f}{len(shown[n]):>16}{int((shown[n] < SPECK_AREA * shown[n].sum()).sum()):>8}"
            for n in names))
    print("(specks: shown regions under 0.05 % of the image at the default granularity)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--bsds-limit", type=int, default=0, help="first N val images (0 = all)")
    parser.add_argument("--camvid-limit", type=int, default=0, help="first N val frames (0 = all)")
    parser.add_argument("--parts", nargs="+", choices=("photos", "bsds", "camvid"),
                        default=["photos", "bsds", "camvid"])
    parser.add_argument("--repeats", type=int, default=2, help="photo timings: best of N")
    args = parser.parse_args()
    if "photos" in args.parts:
        bench_photos(args.variants, args.repeats)
    if "bsds" in args.parts:
        bench_bsds(args.variants, args.bsds_limit)
    if "camvid" in args.parts:
        bench_camvid(args.variants, args.camvid_limit)


if __name__ == "__main__":
    main()
