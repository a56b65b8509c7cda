"""Bounded mutation fuzzing of the image loader and the project/annotation loaders (fixed seeds);
bench/fuzz_loaders.py runs the same for longer."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from core.errors import CutTreeError, ImageLoadError
from core.image_io import image_size, load_image, load_image_downscaled
from core.project import Project
from core.tree_file import load_tree_file, tree_arrays
from tests.export_fixtures import hard_tree
from tests.fuzzing import annotation_seeds, fuzz, image_seeds, is_rgb, project_json_seed
from tests.test_hostile_projects import project_with_trees

BUDGET = 400


def test_image_loader_survives_mutations(tmp_path: Path) -> None:
    failures = fuzz(image_seeds(), BUDGET, 13, tmp_path, load_image, ImageLoadError, is_rgb)
    failures += fuzz(image_seeds(), BUDGET // 4, 14, tmp_path, lambda p: load_image_downscaled(p, 5),
                     ImageLoadError, is_rgb)
    failures += fuzz(image_seeds(), BUDGET // 4, 15, tmp_path, image_size, ImageLoadError,
                     lambda size: len(size) == 2 and min(size) >= 1)
    assert failures == []


def test_annotation_loader_survives_mutations(tmp_path: Path) -> None:
    seeds = annotation_seeds(tree_arrays(hard_tree()))
    failures = fuzz(seeds, BUDGET, 16, tmp_path, load_tree_file, CutTreeError,
                    lambda saved: saved.tree.atom_map.ndim == 2)
    assert failures == []


def test_project_json_loader_survives_mutations(tmp_path: Path) -> None:
    project = project_with_trees(tmp_path)
    seed = project_json_seed(__import__("json").loads((project.folder / "project.json").read_text()))

    def open_copy(path: Path) -> Project:
        shutil.copyfile(path, project.folder / "project.json")
        opened = Project.open(project.folder)
        for entry, tree in opened.iter_trees():           # and every annotation it points to
            assert tree.image_size == (entry.height, entry.width)
        return opened

    failures = fuzz(seed, BUDGET // 2, 17, tmp_path, open_copy, CutTreeError,
                    lambda opened: isinstance(opened, Project), shown="project.json")
    assert failures == []
