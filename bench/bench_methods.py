"""Seconds per image of each cut method on synthetic 32x32 and 64x64 token grids.

Features and attention have planted blocks (each block's tokens share a feature direction
and attend within the block), with multi-resolution attention like SD1.x (r, r/2, r/4, r/8).
The baseline row is the affinity alone (cosine^alpha), measured in the same run.
Run: .venv/bin/python bench/bench_methods.py [--repeats 2] [--sides 32 64]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cut.diffseg import diffseg_hierarchy  # noqa: E402
from core.cut.hierarchy import leaves_at  # noqa: E402
from core.cut.ncut import cosine_affinity, diffcut_hierarchy  # noqa: E402
from core.cut.walk import walk_hierarchy  # noqa: E402
from core.features import Features  # noqa: E402
from core.settings import Settings  # noqa: E402


def synthetic(side: int, blocks: int = 3, channels: int = 64, seed: int = 0) -> Features:
    """Planted blocks x blocks regions in features and in attention at four resolutions."""
    rng = np.random.default_rng(seed)
    label = (np.arange(side) * blocks // side)[:, None] * blocks + (np.arange(side) * blocks // side)[None, :]
    centres = rng.normal(size=(blocks * blocks, channels))
    tokens = (centres[label] + rng.normal(0, 0.5, (side, side, channels))).astype(np.float32)
    attention = {}
    for r in (side, side // 2, side // 4, side // 8):
        sub = label[np.ix_(np.arange(r) * side // r, np.arange(r) * side // r)].ravel()
        logits = 4.0 * (sub[:, None] == sub[None, :]) + rng.normal(0, 0.5, (r * r, r * r)).astype(np.float32)
        p = np.exp(logits.astype(np.float32))
        attention[(r, r)] = p / p.sum(1, keepdims=True)
    return Features(tokens, (side * 16, side * 16), "synthetic", attention)


def timed(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sides", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()
    settings = Settings()
    runs = {
        "affinity only (baseline)": lambda f: cosine_affinity(f.flat(), settings.alpha),
        "diffcut": lambda f: diffcut_hierarchy(f.flat(), settings.alpha, settings.tau_max),
        "diffseg": lambda f: diffseg_hierarchy(f, settings.replace(method="diffseg")),
        "walk (attention, auto k)": lambda f: walk_hierarchy(f, settings.replace(method="walk")),
        "walk (features, auto k)": lambda f: walk_hierarchy(Features(f.tokens, f.image_size, "classic"),
                                                         settings.replace(method="walk")),
    }
    print(f"{'method':<28}" + "".join(f"{f'{s}x{s} s/img':>16}{'segments':>10}" for s in args.sides))
    data = {side: synthetic(side) for side in args.sides}
    for name, run in runs.items():
        row = f"{name:<28}"
        for side in args.sides:
            seconds, out = timed(lambda: run(data[side]), args.repeats)
            segments = len(leaves_at(out, settings.tau)) if hasattr(out, "children") else "-"
            row += f"{seconds:>16.3f}{segments!s:>10}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
