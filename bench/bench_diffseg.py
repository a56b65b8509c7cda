"""DiffSeg's cut and pixel step: on the largest attention grid (64 x 64, bilinear upsampling and
argmax, as the reference) against the earlier path on the feature token grid (16 x 16 for SD 1.x
at 512 px, 32 x 32 for SDXL at 1024 px, DiffCut's concept assignment). Time and peak memory
(tracemalloc) per image, both measured in the same run, interleaved; synthetic attention with
planted regions. Not a test: prints a table.

    .venv/bin/python bench/bench_diffseg.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cut.diffseg import (aggregate_attention, argmax_labels, attention_grid, diffseg_proposals,  # noqa: E402
                              merge_tree, pixel_labels)
from core.cut.hierarchy import leaves_at  # noqa: E402
from core.features import Features  # noqa: E402
from core.pipeline import leaves_of  # noqa: E402
from core.refine import concept_assignment  # noqa: E402
from core.settings import Settings  # noqa: E402

#: (image side, attention sides, token side): SD 1.x at 512 px, SDXL at 1024 px
LAYOUTS = {"SD 1.x, 512²": (512, (64, 32, 16, 8), 16), "SDXL, 1024²": (1024, (64, 32), 32)}


def synthetic(image_side: int, sides: tuple[int, ...], token_side: int, seed: int = 0) -> Features:
    """Planted Voronoi regions in the tokens and in row-stochastic attention at each side."""
    rng = np.random.default_rng(seed)
    centres = rng.random((12, 2))

    def regions(r: int) -> np.ndarray:
        yy, xx = (np.mgrid[0:r, 0:r] + 0.5) / r
        return np.argmin((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2, axis=-1).ravel()
    attention = {}
    for r in sides:
        lab = regions(r)
        logits = 4.0 * (lab[:, None] == lab[None]) + rng.normal(0, 0.5, (r * r, r * r))
        p = np.exp(logits).astype(np.float32)
        attention[(r, r)] = p / p.sum(1, keepdims=True)
    directions = rng.normal(size=(12, 64))
    tokens = directions[regions(token_side)] + rng.normal(0, 0.5, (token_side * token_side, 64))
    return Features(tokens.reshape(token_side, token_side, 64).astype(np.float32), (image_side, image_side),
                    "synthetic", attention)


def on_attention_grid(features: Features, settings: Settings) -> np.ndarray:
    """Now: merge on the largest attention grid, pixels by upsampled argmax."""
    grid = attention_grid(features)
    proposals = diffseg_proposals(aggregate_attention(features.attention, grid), grid, settings.kl_thresholds)
    root = merge_tree(proposals, argmax_labels(proposals, grid).ravel(), settings.kl_thresholds[-1])
    return pixel_labels(leaves_of(root), grid, features.image_size)


def on_token_grid(features: Features, settings: Settings) -> np.ndarray:
    """Before: merge on the feature token grid, pixels by DiffCut's concept assignment."""
    grid = features.grid
    proposals = diffseg_proposals(aggregate_attention(features.attention, grid), grid, settings.kl_thresholds)
    root = merge_tree(proposals, argmax_labels(proposals, grid).ravel(), settings.kl_thresholds[-1])
    token_labels = np.zeros(grid[0] * grid[1], np.int32)
    for k, leaf in enumerate(leaves_at(root, settings.tau)):
        token_labels[leaf.tokens] = k
    return concept_assignment(features.tokens, token_labels.reshape(grid), features.image_size)


def measure(run, features: Features, settings: Settings) -> tuple[float, float, int]:
    """Seconds, peak MiB, segments."""
    tracemalloc.start()
    start = time.perf_counter()
    labels = run(features, settings)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, len(np.unique(labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(encoder="diffusion", method="diffseg")
    runs = {"token grid (before)": on_token_grid, "attention grid (now)": on_attention_grid}
    print("| layout | path | grid | s/image (best) | peak MiB | segments |\n|---|---|---|---|---|---|")
    for name, layout in LAYOUTS.items():
        features = synthetic(*layout)
        best = {path: (np.inf, 0.0, 0) for path in runs}
        for _ in range(args.repeats):                     # interleaved: speed drifts on shared machines
            for path, run in runs.items():
                seconds, peak, segments = measure(run, features, settings)
                best[path] = (min(best[path][0], seconds), max(best[path][1], peak), segments)
        for path, (seconds, peak, segments) in best.items():
            grid = attention_grid(features) if "attention" in path else features.grid
            print(f"| {name} | {path} | {grid[0]}×{grid[1]} | {seconds:.2f} | {peak:.0f} | {segments} |")


if __name__ == "__main__":
    main()
