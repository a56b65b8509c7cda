"""Benchmark: label suggestions on CamVid val (not a test; prints tables).

Segments every frame with the given settings (classic encoder by default), prints the
evaluation table of `cuttree evaluate camvid` for K = 1, 3, 10, then times, on those trees:
- descriptor pooling of every node of a tree (per atom, then summed) against pooling each
  node's mask directly from its definition (the baseline);
- `propagate` over a project of the frames (3 of them labelled), trees already on disk;
- a refresh after one new label (that image's examples, one fit, the shown image's
  suggestions) against recomputing every image's examples (the baseline).
Goals: propagate over 100 images < 10 s; a refresh < 200 ms (it runs off the GUI thread).

    .venv/bin/python bench/bench_suggest.py [--data ../shared/data/camvid] [--limit N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.camvid import CLASSES, camvid_frames                               # noqa: E402
from core.descriptors import node_descriptors, pooled                         # noqa: E402
from core.pipeline import Segmenter                                           # noqa: E402
from core.project import Category, Project                                    # noqa: E402
from core.propagate import propagate_project                                  # noqa: E402
from core.settings import Settings                                            # noqa: E402
from core.suggest import DEFAULT_MIN_CONFIDENCE, Suggester                    # noqa: E402
from core.suggestion_eval import (_label_like_an_annotator, evaluate_suggestions, format_table,  # noqa: E402
                                  segment_frames, spread)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def timed(fn, repeats: int = 5) -> float:
    """Median seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def pooling(frames) -> tuple[float, float]:
    """(ours, direct) median seconds to describe every node of a tree (cold cache)."""
    ours, direct = [], []
    for frame in frames[:10]:
        tree = frame.tree
        ids = list(tree.nodes)

        def cold() -> None:
            tree.descriptors._cache = None
            node_descriptors(tree, ids)
        ours.append(timed(cold))
        direct.append(timed(lambda: [pooled(tree.descriptors, tree.mask(n)) for n in ids], 3))
    return statistics.median(ours), statistics.median(direct)


def propagate_timing(frames, folder: Path) -> tuple[float, int]:
    """Seconds of propagate over a project of the frames, 3 labelled, and the image count."""
    project = Project.create(folder, [Category(i + 1, name) for i, name in enumerate(CLASSES)])
    labelled = spread(len(frames), 3)
    for i, frame in enumerate(frames):
        entry = project.add_image(folder / f"{frame.name}.png", frame.tree.shape[1], frame.tree.shape[0])
        history = _label_like_an_annotator(frame) if i in labelled else None
        project.save_tree(entry.id, frame.tree)
        if history is not None:
            while history.undo():
                pass
    project.save()
    started = time.perf_counter()
    propagate_project(Project.open(folder), DEFAULT_MIN_CONFIDENCE)
    return time.perf_counter() - started, len(frames)


def refresh_timing(frames) -> tuple[float, float]:
    """(refresh, full recompute) median seconds after one new label on a labelled frame."""
    labelled = spread(len(frames), 3)
    histories = [_label_like_an_annotator(frames[i]) for i in labelled]
    suggester = Suggester()
    for i, frame in enumerate(frames):
        suggester.update(i, frame.tree)
    shown = frames[labelled[0] + 1].tree
    edited = frames[labelled[0]].tree
    node = edited.frontier()[0]
    toggle = [edited.nodes[node].category or 1]

    def refresh() -> None:
        toggle[0] = 1 + toggle[0] % len(CLASSES)
        edited.label([node], toggle[0])
        suggester.update(labelled[0], edited)
        suggester.fit()
        suggester.suggest(shown)

    def recompute() -> None:
        fresh = Suggester()
        for i, frame in enumerate(frames):
            fresh.update(i, frame.tree)
        fresh.fit()
        fresh.suggest(shown)
    result = timed(refresh, 7), timed(recompute, 3)
    for history in histories:
        while history.undo():
            pass
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N frames (0 = all)")
    args = parser.parse_args()
    frames = camvid_frames(args.data)
    frames = frames[:args.limit] if args.limit else frames
    segmenter = Segmenter(Settings())
    started = time.perf_counter()
    trees = segment_frames(frames, lambda image: segmenter.cut(image, segmenter.encode(image)))
    seconds = (time.perf_counter() - started) / len(frames)
    print(format_table(evaluate_suggestions(trees), f"CamVid val, {len(frames)} frames, classic encoder, "
                                                     f"{seconds:.2f} s/frame to segment"))
    ours, direct = pooling(trees)
    with tempfile.TemporaryDirectory() as tmp:
        propagate_s, count = propagate_timing(trees, Path(tmp) / "project")
    refresh_s, recompute_s = refresh_timing(trees)
    nodes = statistics.median(len(f.tree.nodes) for f in trees)
    print(f"\n{'timing':<52} {'ours':>9} {'baseline':>9}")
    print(f"{f'descriptors of every node of a tree ({nodes:.0f} nodes)':<52} {ours * 1e3:7.2f}ms "
          f"{direct * 1e3:7.2f}ms  (baseline: each node's mask pooled directly)")
    print(f"{f'propagate over {count} images (trees on disk)':<52} {propagate_s:8.2f}s {'':>9}  (goal < 10 s)")
    print(f"{'refresh after one new label':<52} {refresh_s * 1e3:7.1f}ms {recompute_s * 1e3:7.1f}ms  "
          "(baseline: every image's examples again; goal < 200 ms)")


if __name__ == "__main__":
    main()
