"""The cut methods, one table: what each runs, reads, needs from the encoder, and cuts a finest
region on. Settings, the CLI, the dialog, the encoder and the pipeline all read this table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from core.cut.hierarchy import CutNode
from core.features import Features
from core.jobs import CancelToken

if TYPE_CHECKING:
    from core.settings import Settings

ATTENTION = "attention"      # self-attention probabilities (the diffusion encoder only)
ATOMS = "atoms"              # contour atoms and their adjacency (the classic encoder, core.atoms)


@dataclass(frozen=True)
class CutMethod:
    """One cut method: `run` builds the token hierarchy, `leaf_graph` the (N, N) token graph a
    finest region is cut again on (decision 0004); `parameters` are the Settings it reads;
    `needs`: the encoder outputs it cannot run without, `uses`: those it reads when given;
    `pixels`: its own pixel step (leaves, features, atom-map shape -> leaf index per pixel),
    None for the pipeline's concept assignment (decisions 0002, 0003); `merges_specks`: its
    tree already merges weak specks, so the pipeline does not absorb them (decision 0006)."""

    name: str
    summary: str
    run: Callable[[Features, "Settings", Optional[CancelToken]], CutNode]
    leaf_graph: Callable[[Features, "Settings"], np.ndarray]
    parameters: tuple[str, ...]
    needs: frozenset[str] = frozenset()
    uses: frozenset[str] = frozenset()
    clean_latent: bool = False       # the reference runs the UNet on the clean latent (no noise)
    default_timestep: int = 50       # the reference's diffusion timestep
    pixels: Optional[Callable[[list[CutNode], Features, tuple[int, int]], np.ndarray]] = None
    merges_specks: bool = False


def _diffcut(features: Features, settings: "Settings", cancel: Optional[CancelToken] = None) -> CutNode:
    from core.cut.ncut import diffcut_hierarchy
    return diffcut_hierarchy(features.flat(), settings.alpha, settings.tau_max,
                             settings.min_tokens, settings.reference_zero_rows, cancel)


def _diffseg(features: Features, settings: "Settings", cancel: Optional[CancelToken] = None) -> CutNode:
    from core.cut.diffseg import diffseg_hierarchy
    return diffseg_hierarchy(features, settings, cancel)


def _diffseg_pixels(leaves: list[CutNode], features: Features, shape: tuple[int, int]) -> np.ndarray:
    from core.cut.diffseg import attention_grid, pixel_labels
    return pixel_labels(leaves, attention_grid(features), shape)


def _walk(features: Features, settings: "Settings", cancel: Optional[CancelToken] = None) -> CutNode:
    from core.cut.walk import walk_hierarchy
    return walk_hierarchy(features, settings, cancel)


def _contour(features: Features, settings: "Settings", cancel: Optional[CancelToken] = None) -> CutNode:
    from core.cut.contour import contour_hierarchy
    return contour_hierarchy(features, settings, cancel)


def _atom_walk(features: Features, settings: "Settings", cancel: Optional[CancelToken] = None) -> CutNode:
    from core.cut.atom_walk import atom_walk_hierarchy
    return atom_walk_hierarchy(features, settings, cancel)


def affinity_graph(features: Features, settings: "Settings") -> np.ndarray:
    """DiffCut's cosine^alpha affinity of the normalised tokens."""
    from core.cut.ncut import cosine_affinity
    from core.refine import normalized_tokens
    flat = normalized_tokens(features.tokens)
    return cosine_affinity(flat.reshape(-1, flat.shape[-1]), settings.alpha)


def walk_graph(features: Features, settings: "Settings") -> np.ndarray:
    """The k-step walk affinity W_k the walk method cut the tree on."""
    from core.cut.walk import walk_graph as graph
    return graph(features, settings)[0]


METHODS: dict[str, CutMethod] = {m.name: m for m in (
    CutMethod("diffcut", "recursive NCut on UNet features (alpha, tau as the DiffCut paper)",
              _diffcut, affinity_graph, ("alpha", "min_tokens", "reference_zero_rows")),
    CutMethod("diffseg", "KL merging of self-attention maps (DiffSeg), merged further into a tree",
              _diffseg, affinity_graph, ("kl_thresholds", "alpha"), needs=frozenset({ATTENTION}),
              clean_latent=True, default_timestep=300, pixels=_diffseg_pixels),
    CutMethod("walk", "random-walk NCut on k-step attention walks, automatic threshold",
              _walk, walk_graph, ("alpha", "walk_steps", "min_tokens"), uses=frozenset({ATTENTION})),
    CutMethod("contour", "walk down to the default granularity, then greedy merges of contour "
              "atoms (small high-contrast things get their own regions; decision 0006)",
              _contour, walk_graph, ("alpha", "walk_steps", "min_tokens"), needs=frozenset({ATOMS}),
              merges_specks=True),
    CutMethod("atomwalk", "random-walk NCut on a sparse graph of contour atoms (low-rank k-step "
              "walk; finer regions than the token grid; decision 0008)",
              _atom_walk, walk_graph, ("walk_steps",), needs=frozenset({ATOMS})),
)}

AUTO = "auto"
#: what `auto` runs per encoder: on the classic encoder's local features DiffCut's constant
#: threshold over-segments and the walk's automatic one does not (docs/decisions/0003); the
#: atom walk's regions equal or beat the token walk's on BSDS500 and CamVid (decision 0008)
AUTO_METHOD = {"classic": "atomwalk", "diffusion": "diffcut"}
#: what each encoder can give a method beyond its token grid
ENCODER_PROVIDES = {"classic": frozenset({ATOMS}), "diffusion": frozenset({ATTENTION})}
METHOD_CHOICES = (AUTO, *METHODS)


def wanted_outputs(method: CutMethod) -> frozenset[str]:
    """What the encoder should compute for `method`: what it needs and what it uses."""
    return method.needs | method.uses


def cuts_atoms(method: str) -> bool:
    """Whether the tree of `method` (a name) is over contour atoms rather than grid tokens; its
    finest regions are then cut on their atoms (core.cut.contour.contour_split)."""
    return ATOMS in METHODS[method].needs


def resolve(method: str, encoder: str) -> CutMethod:
    """The method that runs for the `method` setting (`auto` or a name) on `encoder`."""
    return METHODS[AUTO_METHOD[encoder] if method == AUTO else method]


def conflict(method: str, encoder: str) -> Optional[str]:
    """Why `method` cannot run on `encoder`'s features, or None when it can."""
    chosen = resolve(method, encoder)
    missing = chosen.needs - ENCODER_PROVIDES[encoder]
    if not missing:
        return None
    encoders = [e for e, gives in ENCODER_PROVIDES.items() if missing <= gives]
    others = [m.name for m in METHODS.values() if not m.needs - ENCODER_PROVIDES[encoder]]
    return (f"the {chosen.name} method needs {', '.join(sorted(missing))} maps, which the {encoder} "
            f"encoder does not give: choose the {' or '.join(encoders)} encoder, "
            f"or the {' or '.join(others)} method")
