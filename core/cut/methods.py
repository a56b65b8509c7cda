"""The cut methods by name: each maps Features (and Settings) to a token cut hierarchy."""
from __future__ import annotations

from typing import Callable, Optional

from core.cut.hierarchy import CutNode
from core.features import Features
from core.jobs import CancelToken
from core.settings import Settings

Method = Callable[[Features, Settings, Optional[CancelToken]], CutNode]


def diffcut(features: Features, settings: Settings, cancel: Optional[CancelToken] = None) -> CutNode:
    """DiffCut: recursive NCut on cosine^alpha token affinities."""
    from core.cut.ncut import diffcut_hierarchy
    return diffcut_hierarchy(features.flat(), settings.alpha, settings.tau_max,
                             settings.min_tokens, settings.reference_zero_rows, cancel)


def diffseg(features: Features, settings: Settings, cancel: Optional[CancelToken] = None) -> CutNode:
    """DiffSeg: KL merging of self-attention maps, merged further into a hierarchy."""
    from core.cut.diffseg import diffseg_hierarchy
    return diffseg_hierarchy(features, settings, cancel)


def walk(features: Features, settings: Settings, cancel: Optional[CancelToken] = None) -> CutNode:
    """Random-walk NCut on k-step attention transitions, with an automatic threshold."""
    from core.cut.walk import walk_hierarchy
    return walk_hierarchy(features, settings, cancel)


def contour(features: Features, settings: Settings, cancel: Optional[CancelToken] = None) -> CutNode:
    """The walk above the default granularity, greedy merges of contour atoms below."""
    from core.cut.contour import contour_hierarchy
    return contour_hierarchy(features, settings, cancel)


METHODS: dict[str, Method] = {"diffcut": diffcut, "diffseg": diffseg, "walk": walk,
                              "contour": contour}
#: methods whose token ids are contour atoms (Features.atoms), not grid cells
ATOM_METHODS = frozenset({"contour"})
