"""The category list used when no project is open (a project brings its own)."""
from __future__ import annotations

from core.project import Category
from core.tree import node_color

DEFAULT_NAMES = ("person", "animal", "vehicle", "building", "plant", "sky", "ground", "water", "object")


def default_categories() -> list[Category]:
    """Nine starter categories, one per number key, things before stuff."""
    stuff = {"sky", "ground", "water"}
    return [Category(i, name, category_color(i), name not in stuff)
            for i, name in enumerate(DEFAULT_NAMES, start=1)]


def category_color(category_id: int) -> tuple[int, int, int]:
    """A stable colour per category id, apart from the colours of regions (node ids)."""
    return node_color(category_id * 7919)
