"""Benchmark: full cut tree build, ours vs a dense re-implementation of DiffCut's recursion,
and end-to-end seconds per image of the classic pipeline.

    .venv/bin/python bench/bench_ncut.py [--repeat 3] [--skip-reference-above 4096]

Prints a table; the baseline is measured in the same run (tests/reference_ncut.py: one dense
eigendecomposition of the sub-graph Laplacian per node and 100 quadratic forms, float32, as the
reference). Both compute the same tree (partition checked equal, reference parity mode).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cut.hierarchy import label_tokens  # noqa: E402
from core.cut.ncut import cosine_affinity, ncut_hierarchy  # noqa: E402
from core.pipeline import segment  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.reference_ncut import reference_labels  # noqa: E402
from tests.test_ncut import planted, same_partition  # noqa: E402

TAU_MAX = 0.5


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def tree_rows(repeat: int, skip_above: int) -> list[str]:
    rows = []
    for side in (16, 32, 64):
        n = side * side
        feats, _ = planted(side, side, side, k=6, c=64, noise=0.9)

        def ours():
            with threadpool_limits(1, "blas"):
                return ncut_hierarchy(cosine_affinity(feats, 10.0), TAU_MAX, drop_zero_rows=True)
        t_ours, root = best_of(repeat, ours)
        labels = label_tokens(root, (side, side), TAU_MAX)
        if n > skip_above:
            rows.append(f"| {n:5d} | {len(np.unique(labels)):4d} | {t_ours * 1000:9.1f} | {'skipped':>13} | {'':>7} | {'':>5} |")
            continue
        t_ref, ref = best_of(1 if n >= 4096 else repeat, lambda: reference_labels(feats, TAU_MAX, 10.0))
        same = same_partition(labels, ref)
        rows.append(f"| {n:5d} | {len(np.unique(labels)):4d} | {t_ours * 1000:9.1f} | {t_ref * 1000:13.1f} "
                    f"| {t_ref / t_ours:6.1f}x | {'yes' if same else 'NO':>5} |")
    return rows


def pipeline_rows(repeat: int) -> list[str]:
    import skimage.data
    rows = []
    for name in ("coffee", "astronaut", "chelsea"):
        image = np.asarray(Image.fromarray(getattr(skimage.data, name)()).resize((1024, 768)))
        for tokens in (32, 48):
            t, tree = best_of(repeat, lambda: segment(image, Settings(classic_tokens=tokens)))
            rows.append(f"| {name:9} | {tokens:6d} | {tree.n_atoms:5d} | {len(tree.frontier()):7d} | {t:7.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-reference-above", type=int, default=4096)
    args = parser.parse_args()
    print(f"Full cut tree (alpha 10, tau {TAU_MAX}, planted 6 regions + noise), best of {args.repeat}")
    print("| tokens | segs | ours (ms) | reference (ms) | speed-up | same |")
    print("|-------:|-----:|----------:|---------------:|--------:|-----:|")
    print("\n".join(tree_rows(args.repeat, args.skip_reference_above)))
    print("\nClassic pipeline, 1024x768 photo, end to end (encode + cut to tau_max 0.8 + atoms)")
    print("| image     | tokens | atoms | shown@0.5 | seconds |")
    print("|-----------|-------:|------:|----------:|--------:|")
    print("\n".join(pipeline_rows(max(1, args.repeat - 1))))


if __name__ == "__main__":
    main()
