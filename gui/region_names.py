"""What a region is called in the layer panel and the status bar."""
from __future__ import annotations

from typing import Callable, Optional

from core.tree import SegmentTree


def region_name(tree: SegmentTree, node_id: int, category_name: Callable[[Optional[int]], str]) -> str:
    """Its own name, else its category's, else "region 12 (8.3%)"; the root is "image"."""
    node = tree.nodes[node_id]
    label = node.name or ("image" if node_id == tree.root else category_name(tree.effective_category(node_id)))
    if not label:
        share = 100 * tree.area(node_id) / max(tree.atom_map.size, 1)
        label = f"region {node_id} ({share:.1f}%)"
    return label + (" (ignored)" if node.ignored else "")
