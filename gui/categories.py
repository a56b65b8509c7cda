"""The category list used when no project is open (a project brings its own)."""
from __future__ import annotations

from core.project import LABEL_SETS, Category, load_label_set
from core.tree import node_color


def default_categories() -> list[Category]:
    """The shipped starter set (resources/label_sets/default.json): one per number key."""
    return load_label_set(LABEL_SETS / "default.json")


def category_color(category_id: int) -> tuple[int, int, int]:
    """A stable colour per category id, apart from the colours of regions (node ids)."""
    return node_color(category_id * 7919)
