"""Benchmark: save, load, autosave and export a synthetic project (not a test; prints a table).

200 images of 1024x768, each a flat Voronoi partition of ~100 regions under a random hierarchy,
80 % of the frontier labelled with 10 categories (3 of them stuff), a short edit history.
Baselines measured in the same run: `np.savez_compressed` (zlib level 6) for saving, and the
usual full-image `pycocotools.mask.encode` per region for RLE encoding.
Goals: autosave of one edited image < 50 ms; whole-project export < 30 s.

    .venv/bin/python bench/bench_project.py [--images 200] [--regions 100]
"""
from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.export.coco import CocoOptions, export_project_coco          # noqa: E402
from core.export.panoptic import export_project_panoptic               # noqa: E402
from core.export.semantic import export_project_semantic               # noqa: E402
from core.project import Category, Project                  # noqa: E402
from core.tree import History, SegmentTree                             # noqa: E402
from core.tree_file import tree_arrays                                     # noqa: E402

HEIGHT, WIDTH = 768, 1024


def voronoi(rng: np.random.Generator, regions: int) -> np.ndarray:
    seeds = rng.random((regions, 2)) * [HEIGHT, WIDTH]
    grid = np.stack(np.mgrid[0:HEIGHT, 0:WIDTH], axis=-1).reshape(-1, 2)
    return cKDTree(seeds).query(grid)[1].reshape(HEIGHT, WIDTH).astype(np.int32)


def random_nested(rng: np.random.Generator, atoms: list[int]) -> tuple:
    """Split the atoms recursively into 2-4 random groups: a random hierarchy over them."""
    if len(atoms) == 1:
        return ([atoms[0]], math.inf, [])
    k = min(len(atoms), int(rng.integers(2, 5)))
    cuts = np.sort(rng.choice(np.arange(1, len(atoms)), size=k - 1, replace=False))
    return ([], float(rng.random()), [random_nested(rng, list(part)) for part in np.split(np.array(atoms), cuts)])


def synthetic_tree(rng: np.random.Generator, labels: np.ndarray) -> tuple[SegmentTree, History]:
    atoms = list(rng.permutation(int(labels.max()) + 1))
    tree = SegmentTree.from_nested(labels, random_nested(rng, [int(a) for a in atoms]))
    history = History(tree)
    history.push(tree.set_granularity(2.0))                   # everything expanded: ~100 regions
    front = tree.frontier()
    for nid in front:
        if rng.random() < 0.8:
            history.push(tree.label([nid], int(rng.integers(1, 11))))
    return tree, history


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): the CPU column is robust on a busy machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--regions", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    bases = [voronoi(rng, args.regions) for _ in range(8)]     # reused: cost does not depend on uniqueness
    categories = [Category(i, f"class{i}", isthing=i > 3) for i in range(1, 11)]
    trees = [synthetic_tree(rng, bases[i % len(bases)]) for i in range(args.images)]
    rows: list[tuple[str, tuple[float, float], str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "proj"
        project = Project.create(folder, categories)
        for i in range(args.images):
            project.add_image(Path(tmp) / f"img{i:04d}.jpg", WIDTH, HEIGHT)
        project.save()

        def save_all() -> None:
            for image_id, (tree, history) in zip(project.images, trees):
                project.save_tree(image_id, tree, history)

        rows.append(("save project (all annotation files)", timed(save_all), f"{args.images} files"))
        arrays = tree_arrays(trees[0][0], trees[0][1])
        baseline = timed(lambda: [np.savez_compressed(io.BytesIO(), **arrays) for _ in range(args.images)])
        rows.append(("  baseline: np.savez_compressed, zlib 6", baseline, "same arrays"))
        size = sum(p.stat().st_size for p in (folder / "annotations").iterdir()) / args.images / 1024
        rows.append(("  annotation file size", (0.0, 0.0), f"{size:.0f} KiB each"))

        def load_all() -> None:
            opened = Project.open(folder)
            for image_id in opened.images:
                opened.load_tree(image_id)

        rows.append(("open project + load all trees", timed(load_all), ""))

        tree, history = trees[0]
        samples = []
        for n in range(20):
            history.push(tree.label([tree.frontier()[n]], 1 + n % 10))
            samples.append(timed(lambda: project.write(project.snapshot(1, tree, history))))
        walls = [w for w, _ in samples]
        rows.append(("autosave one edited image: snapshot + write (median of 20)",
                     (statistics.median(walls), statistics.median(c for _, c in samples)),
                     f"max {max(walls) * 1000:.1f} ms wall; goal < 50 ms"))

        out = Path(tmp) / "out"
        report = None

        def coco(polygons: bool) -> None:
            nonlocal report
            report = export_project_coco(project, out / f"coco-{polygons}.json", CocoOptions(polygons=polygons))

        rows.append(("export COCO RLE + self-check", timed(lambda: coco(False)),
                     f"{report.annotations if report else 0} anns; goal < 30 s"))
        rows.append(("export COCO polygons + self-check", timed(lambda: coco(True)),
                     f"IoU min {report.polygon_iou[0]:.3f} mean {report.polygon_iou[1]:.3f}"
                     if report and report.polygon_iou else ""))
        rows.append(("export COCO panoptic + self-check",
                     timed(lambda: export_project_panoptic(project, out / "panoptic.json")), ""))
        rows.append(("export semantic PNG + self-check",
                     timed(lambda: export_project_semantic(project, out / "semantic")), ""))
        labels = bases[0]
        ids = np.unique(labels)
        one = timed(lambda: [mask_utils.encode(np.asfortranarray((labels == i).astype(np.uint8))) for i in ids])
        rows.append(("  baseline: full-mask pycocotools encode, no check", (one[0] * args.images, one[1] * args.images),
                     f"{len(ids)} regions x {args.images} images"))
    print(f"\nproject of {args.images} images {WIDTH}x{HEIGHT}, ~{args.regions} regions each\n")
    print(f"| {'operation':<50} | {'wall s':>8} | {'CPU s':>8} | notes")
    print(f"|{'-' * 52}|{'-' * 10}|{'-' * 10}|{'-' * 30}")
    for name, (wall, cpu), note in rows:
        values = f"{wall:8.3f} | {cpu:8.3f}" if wall else " " * 8 + " | " + " " * 8
        print(f"| {name:<50} | {values} | {note}")


if __name__ == "__main__":
    main()
