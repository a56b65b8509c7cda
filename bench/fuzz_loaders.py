"""Longer mutation fuzzing of the image and project/annotation loaders than tests/ runs (prints a table).

Each loader gets --count mutated files per seed of tests/fuzzing.py; a failure is any exception
other than the user-facing error, a message that is not one line naming the file, or a malformed
result. Failures are listed with their case number so that `--seed`/`--count` reproduce them.

    .venv/bin/python bench/fuzz_loaders.py [--count 3000] [--seed 1]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import CutTreeError, ImageLoadError                     # noqa: E402
from core.image_io import image_size, load_image, load_image_downscaled  # noqa: E402
from core.project import Project                                          # noqa: E402
from core.tree_file import load_tree_file, tree_arrays                    # noqa: E402
from tests.export_fixtures import hard_tree                               # noqa: E402
from tests.fuzzing import annotation_seeds, fuzz, image_seeds, is_rgb, project_json_seed  # noqa: E402
from tests.test_hostile_projects import project_with_trees               # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="mutated files per loader")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")            # Pillow warns on many damaged TIFF tags
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "p").mkdir()
        project = project_with_trees(folder / "p")
        data = __import__("json").loads((project.folder / "project.json").read_text())

        def open_copy(path: Path) -> Project:
            shutil.copyfile(path, project.folder / "project.json")
            opened = Project.open(project.folder)
            list(opened.iter_trees())
            return opened

        runs = [
            ("load_image", image_seeds(), load_image, ImageLoadError, is_rgb, ""),
            ("load_image_downscaled", image_seeds(), lambda p: load_image_downscaled(p, 5), ImageLoadError, is_rgb, ""),
            ("image_size", image_seeds(), image_size, ImageLoadError, lambda s: min(s) >= 1, ""),
            ("load_tree_file", annotation_seeds(tree_arrays(hard_tree())), load_tree_file, CutTreeError,
             lambda saved: saved.tree.atom_map.ndim == 2, ""),
            ("Project.open", project_json_seed(data), open_copy, CutTreeError,
             lambda opened: isinstance(opened, Project), "project.json"),
        ]
        print("| loader | cases | failures | seconds |")
        print("|---|---:|---:|---:|")
        found = []
        for name, seeds, load, expected, valid, shown in runs:
            start = time.perf_counter()
            failures = fuzz(seeds, args.count, args.seed, folder, load, expected, valid, shown)
            print(f"| {name} | {args.count} | {len(failures)} | {time.perf_counter() - start:.1f} |", flush=True)
            found += [(name, f) for f in failures]
        for name, failure in found[:20]:
            print(f"\n{name} case {failure.case} ({failure.seed_name}):\n{failure.error}")


if __name__ == "__main__":
    main()
