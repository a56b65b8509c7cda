"""From token segments to pixels: concept assignment (DiffCut §3.3) and PAMR (§4).

Concept assignment scores each pixel against segment embeddings (the mean of the
L2-normalised token features of the segment, not re-normalised) using bilinearly
upsampled token features. Bilinear upsampling is linear, so upsampling the token-level
scores equals scoring the upsampled features; we upsample scores, which never builds an
(H, W, C) array.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.color import rgb2lab

if TYPE_CHECKING:
    import torch



class BilinearSampler:
    """Bilinear upsampling (h, w) -> (H, W), half-pixel centres, as torch align_corners=False."""

    def __init__(self, grid: tuple[int, int], out_shape: tuple[int, int]) -> None:
        self.grid = grid
        self.out_shape = out_shape
        self.y0, self.y1, self.fy = _axis(grid[0], out_shape[0])
        self.x0, self.x1, self.fx = _axis(grid[1], out_shape[1])
        self._quad = (self.y0[:, None] * grid[1] + self.x0[None, :]).ravel()

    def sample(self, values: np.ndarray, pixels: Optional[np.ndarray] = None) -> np.ndarray:
        """Upsampled values of an (h, w) map at flat pixel indices (all pixels if None)."""
        if pixels is None:
            rows, cols = np.divmod(np.arange(self.out_shape[0] * self.out_shape[1]), self.out_shape[1])
        else:
            rows, cols = np.divmod(pixels, self.out_shape[1])
        y0, y1, fy = self.y0[rows], self.y1[rows], self.fy[rows]
        x0, x1, fx = self.x0[cols], self.x1[cols], self.fx[cols]
        top = values[y0, x0] * (1 - fx) + values[y0, x1] * fx
        bottom = values[y1, x0] * (1 - fx) + values[y1, x1] * fx
        return top * (1 - fy) + bottom * fy


    def nonnegative(self, values: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """Whether the upsampled (h, w) map is >= 0 at flat pixel indices.

        A pixel whose four surrounding tokens agree in sign takes that sign (a convex
        combination keeps it); only pixels near a sign change are interpolated.
        """
        h, w = self.grid
        ys, xs = np.arange(h), np.arange(w)
        y1, x1 = np.minimum(ys + 1, h - 1), np.minimum(xs + 1, w - 1)
        quad = [values, values[:, x1], values[y1], values[y1][:, x1]]
        low = np.minimum.reduce(quad).ravel()
        high = np.maximum.reduce(quad).ravel()
        q = self._quad[pixels]
        out = low[q] >= 0
        mixed = np.flatnonzero((low[q] < 0) & (high[q] >= 0))
        out[mixed] = self.sample(values, pixels[mixed]) >= 0
        return out


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def normalized_tokens(tokens: np.ndarray) -> np.ndarray:
    """(h, w, c) tokens with unit L2 norm per token (float32)."""
    tokens = tokens.astype(np.float32)
    return tokens / np.maximum(np.linalg.norm(tokens, axis=-1, keepdims=True), 1e-12)


def segment_embeddings(tokens_flat: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """(K, c): the mean normalised token of each group of token ids, not re-normalised."""
    return np.stack([tokens_flat[g].mean(axis=0) for g in groups])


def concept_assignment(tokens: np.ndarray, token_labels: np.ndarray,
                       out_shape: tuple[int, int]) -> np.ndarray:
    """Pixel labels: argmax over segments of <upsampled feature, segment embedding>."""
    h, w, c = tokens.shape
    flat = normalized_tokens(tokens).reshape(h * w, c)
    k = int(token_labels.max()) + 1
    labels = token_labels.ravel()
    emb = segment_embeddings(flat, [np.flatnonzero(labels == i) for i in range(k)])
    import torch                      # here, not at the top: the classic pixel step never needs it (2.5 s)
    import torch.nn.functional as F
    scores = torch.from_numpy((flat @ emb.T).T.reshape(1, k, h, w).copy())
    best = torch.full(out_shape, -torch.inf)
    out = torch.zeros(out_shape, dtype=torch.int32)
    for start in range(0, k, 16):  # bounded memory for many segments
        up = F.interpolate(scores[:, start:start + 16], size=out_shape, mode="bilinear",
                           align_corners=False)[0]
        value, index = up.max(dim=0)
        better = value > best
        best = torch.where(better, value, best)
        out = torch.where(better, index.int() + start, out)
    return out.numpy()


def pamr(image: np.ndarray, labels: np.ndarray, iterations: int = 10,
         dilations: Sequence[int] = (1, 2, 4, 8)) -> np.ndarray:
    """Pixel-Adaptive Mask Refinement then a 3x3 median (Araslanov & Roth, CVPR 2020).

    Each iteration replaces every pixel's label distribution by the average of its
    neighbours' (8 per dilation), weighted by a softmax of colour similarity scaled by
    the local colour spread; the centre is not included.
    """
    import torch
    import torch.nn.functional as F
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    k = int(labels.max()) + 1
    if k < 2:
        return labels.astype(np.int32)
    masks = F.one_hot(torch.from_numpy(labels.astype(np.int64)), k).permute(2, 0, 1)[None].float()
    affinity = _local_affinity(img, dilations)
    with torch.no_grad():
        for _ in range(iterations):
            masks = sum(a * shifted for a, shifted in zip(affinity.unbind(dim=2), _shifts(masks, dilations)))
    refined = masks[0].argmax(dim=0).numpy().astype(np.int32)
    return ndimage.median_filter(refined, size=3, mode="nearest")


def _shifts(x: torch.Tensor, dilations: Sequence[int]):
    """The 8 neighbours of every pixel at each dilation, one (B, C, H, W) view at a time."""
    import torch.nn.functional as F
    h, w = x.shape[-2:]
    for d in dilations:
        padded = F.pad(x, (d, d, d, d), mode="replicate")
        for dy in (-d, 0, d):
            for dx in (-d, 0, d):
                if dy or dx:
                    yield padded[..., d + dy:d + dy + h, d + dx:d + dx + w]


def _local_affinity(img: torch.Tensor, dilations: Sequence[int]) -> torch.Tensor:
    """Softmax over neighbours of -|x - x_n| / (0.1 std), averaged over colour channels."""
    import torch
    with torch.no_grad():
        neigh = torch.stack(list(_shifts(img, dilations)), dim=2)
        centre = img.unsqueeze(2)
        stencil = torch.cat([centre.expand(-1, -1, len(dilations), -1, -1), neigh], dim=2)
        std = stencil.std(dim=2, keepdim=True)
        aff = -(neigh - centre).abs() / (1e-8 + 0.1 * std)
        return torch.softmax(aff.mean(dim=1, keepdim=True), dim=2)


#: pixel colours are smoothed before guiding, against speckle: Gaussian sigma as a fraction
#: of the token cell (2 px for 32-pixel cells), at least one pixel
SMOOTH_CELL = 1 / 16


def quad_corners(grid: tuple[int, int]) -> np.ndarray:
    """(h*w, 4) token ids of the quad whose top-left token is each token (clamped at the edges),
    in the order top-left, top-right, bottom-left, bottom-right."""
    h, w = grid
    rows, cols = np.divmod(np.arange(h * w), w)
    down, right = np.minimum(rows + 1, h - 1), np.minimum(cols + 1, w - 1)
    return np.stack([rows * w + cols, rows * w + right, down * w + cols, down * w + right], axis=1)


class GuidedLabels:
    """Token groups to pixels for local features: joint bilateral upsampling of labels.

    A pixel scores each group by the bilinear weights of its four surrounding tokens in that
    group, each multiplied by a Gaussian of the Lab distance between the pixel's colour and
    the token's mean colour (Kopf et al., "Joint bilateral upsampling", SIGGRAPH 2007), so
    boundaries follow the image inside the token cell. Used when a segment's mean feature is
    meaningless for concept assignment (docs/decisions/0003-classic-pixel-step.md).
    """

    def __init__(self, image: np.ndarray, grid: tuple[int, int], sigma: float = 8.0) -> None:
        self.grid, self.shape = grid, image.shape[:2]
        self.image, self.sigma = image, sigma
        self._cache: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pixel its quad (the top-left token of its four), per quad its four token ids,
        and per pixel the four colour-guided bilinear weights.

        Computed once (about 15 MB at 1024x768) so that descending the tree only gathers.
        """
        if self._cache is None:
            s, w = BilinearSampler(self.grid, self.shape), self.grid[1]
            quad = (s.y0[:, None] * w + s.x0[None, :]).astype(np.int32)
            corners = quad_corners(self.grid)
            bilinear = [wy[:, None] * wx[None, :] for wy in (1 - s.fy, s.fy) for wx in (1 - s.fx, s.fx)]
            token_lab, lab = self._colours()
            scale = np.float32(-2 * self.sigma ** 2)
            weights = [b * np.exp(((lab - token_lab[corners[quad, k]]) ** 2).sum(-1) / scale)
                       for k, b in enumerate(bilinear)]
            self._cache = quad.ravel(), corners, np.stack([x.ravel() for x in weights], 1).astype(np.float32)
        return self._cache

    def release(self) -> None:
        """Drop the per-pixel table (rebuilt on the next `assign`)."""
        self._cache = None

    def _colours(self) -> tuple[np.ndarray, np.ndarray]:
        """(h*w, 3) mean Lab colour per token cell, and (H, W, 3) smoothed Lab per pixel."""
        h, w = self.grid
        cells = Image.fromarray(self.image).resize((w, h), Image.Resampling.BOX)
        token_lab = rgb2lab(np.asarray(cells)).astype(np.float32).reshape(-1, 3)
        sigma = max(1.0, SMOOTH_CELL * max(self.shape) / max(self.grid))
        lab = ndimage.gaussian_filter(rgb2lab(self.image).astype(np.float32), (sigma, sigma, 0))
        return token_lab, lab

    def assign(self, groups: Sequence[np.ndarray], pixels: np.ndarray) -> np.ndarray:
        """Index into `groups` (disjoint token-id arrays) chosen for each flat pixel index.

        A pixel none of whose four tokens is in any group goes to the group of the nearest
        token (it can happen when an earlier step moved pixels, e.g. PAMR).
        """
        group_of = np.full(self.grid[0] * self.grid[1], -1, dtype=np.int32)
        for k, ids in enumerate(groups):
            group_of[ids] = k
        quad_of, corners, table_weights = self._table()
        quad_member = group_of[corners]
        first = quad_member[:, 0]
        settled = (quad_member == first[:, None]).all(axis=1) & (first >= 0)
        quads = quad_of[pixels]
        choice = first[quads].astype(np.int64)
        mixed = np.flatnonzero(~settled[quads])
        member = quad_member[quads[mixed]]
        weights = np.where(member >= 0, table_weights[pixels[mixed]] + np.float32(1e-12), 0)
        # each of the four candidates scores the summed weight of the neighbours in its group
        scores = ((member[:, :, None] == member[:, None, :]) * weights[:, None, :]).sum(axis=2)
        best = scores.argmax(axis=1)
        rows = np.arange(len(mixed))
        choice[mixed] = member[rows, best]
        lost = mixed[scores[rows, best] <= 0]
        if len(lost):
            choice[lost] = self._nearest_group(group_of, pixels[lost])
        return choice

    def _nearest_group(self, group_of: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        h, w = self.grid
        inside = np.flatnonzero(group_of >= 0)
        centres = np.stack(np.divmod(inside, w), axis=1) + 0.5
        rows, cols = np.divmod(pixels, self.shape[1])
        where = np.stack([(rows + 0.5) * h / self.shape[0], (cols + 0.5) * w / self.shape[1]], axis=1)
        return group_of[inside[cKDTree(centres).query(where)[1]]]


#: a connected piece of a region smaller than this share of the image is a speck ...
SPECK_AREA = 0.0005
#: ... unless the CIELAB difference between the pixels on either side of its outline averages
#: this much: about twice the colour step that separates regions at the default granularity
STRONG_CONTRAST = 20.0


def absorb_specks(labels: np.ndarray, image: np.ndarray, area: Optional[float] = None,
                  contrast: float = STRONG_CONTRAST) -> np.ndarray:
    """Labels with every weak speck given to the neighbouring piece it shares most boundary with.

    A speck is a 4-connected piece of one label with fewer than `area` of the pixels whose
    outline is weaker than `contrast` on average: small things with a sharp outline (a sign,
    a button) stay, leftovers of the upsampling do not. `area` defaults to SPECK_AREA, read at
    each call (bench/bench_quality.py sets it to 0 to measure the pipeline without).
    """
    from skimage.measure import label as connected
    area = SPECK_AREA if area is None else area
    pieces = connected(labels + 1, connectivity=1, background=0) - 1
    n = int(pieces.max()) + 1
    small = np.bincount(pieces.ravel(), minlength=n) < area * labels.size
    if not small.any():
        return labels
    flat_pieces, flat_image = pieces.ravel(), image.reshape(-1, 3)
    index = np.arange(labels.size).reshape(labels.shape)
    a, b, s = [], [], []
    for first, second in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                          ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        p, q = index[first].ravel(), index[second].ravel()
        pa, pb = flat_pieces[p], flat_pieces[q]
        outline = (pa != pb) & (small[pa] | small[pb])
        p, q, pa, pb = p[outline], q[outline], pa[outline], pb[outline]
        step = np.linalg.norm(rgb2lab(flat_image[p][None])[0] - rgb2lab(flat_image[q][None])[0], axis=1)
        a += [pa, pb]
        b += [pb, pa]
        s += [step, step]
    a, b, s = np.concatenate(a), np.concatenate(b), np.concatenate(s)
    keep = small[a]
    a, b, s = a[keep], b[keep], s[keep]
    outline = np.bincount(a, s, n) / np.maximum(np.bincount(a, minlength=n), 1)
    pairs, shared = np.unique(a.astype(np.int64) * n + b, return_counts=True)
    speck, neighbour = np.divmod(pairs, n)
    order = np.lexsort((-shared, speck))                 # per speck, longest boundary first
    first = order[np.r_[True, speck[order][1:] != speck[order][:-1]]]
    speck, neighbour = speck[first], neighbour[first]
    weak = outline[speck] < contrast
    target = np.arange(n)
    target[speck[weak]] = neighbour[weak]
    for _ in range(8):                                   # specks handed to specks follow on
        target = target[target]
    piece_label = np.zeros(n, dtype=labels.dtype)
    piece_label[pieces.ravel()] = labels.ravel()
    return piece_label[target][pieces]
