"""Self-attention probabilities for DiffSeg (Tian et al. 2024, §2.2-2.3 of the reference notes)
and the random-walk method: softmax(QK^T / sqrt(d)) of chosen `attn1` layers, averaged over heads
inside the attention processor and computed in query chunks so that a full (heads, N, N) tensor
never exists; the processor still returns the layer's normal output so the UNet runs unchanged."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

#: bytes of float32 scores one query chunk may hold (all heads together)
CHUNK_BYTES = 64 * 1024 * 1024


def grid_of(tokens: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """The (rows, cols) of a layer with `tokens` tokens, for a latent of shape `latent_hw`."""
    h, w = latent_hw
    factor = 1
    while (h // factor) * (w // factor) > tokens and factor <= max(h, w):
        factor *= 2
    grid = (-(-h // factor), -(-w // factor))
    if grid[0] * grid[1] != tokens:
        raise ValueError(f"{tokens} tokens do not form a grid of a {h}x{w} latent")
    return grid


class AttentionRecorder:
    """Sums head-averaged attention probabilities per grid resolution over the recorded layers."""

    def __init__(self) -> None:
        self.latent_hw: tuple[int, int] = (0, 0)
        self._sums: dict[tuple[int, int], torch.Tensor] = {}
        self._counts: dict[tuple[int, int], int] = {}

    def start(self, latent_hw: tuple[int, int]) -> None:
        """Forget earlier maps; the next forward pass runs on a latent of this shape."""
        self.latent_hw = latent_hw
        self._sums.clear()
        self._counts.clear()

    def add_rows(self, grid: tuple[int, int], rows: slice, probs: torch.Tensor, first_chunk: bool) -> None:
        """Add one chunk of head-averaged probabilities (chunk, N) of one layer."""
        n = grid[0] * grid[1]
        if grid not in self._sums:
            self._sums[grid] = torch.zeros(n, n, dtype=torch.float32, device=probs.device)
            self._counts[grid] = 0
        self._sums[grid][rows] += probs
        if first_chunk:
            self._counts[grid] += 1

    def maps(self) -> dict[tuple[int, int], np.ndarray]:
        """Mean over layers per resolution, as float32 (N, N) arrays whose rows sum to 1."""
        return {grid: (total / self._counts[grid]).cpu().numpy() for grid, total in self._sums.items()}


class AveragedProbabilitiesProcessor:
    """A diffusers attention processor for self-attention that records head-averaged probabilities."""

    def __init__(self, recorder: AttentionRecorder, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.recorder = recorder
        self.chunk_bytes = chunk_bytes

    def __call__(self, attn: nn.Module, hidden_states: torch.Tensor,
                 encoder_hidden_states: Optional[torch.Tensor] = None,
                 attention_mask: Optional[torch.Tensor] = None, temb: Optional[torch.Tensor] = None,
                 *args, **kwargs) -> torch.Tensor:
        if hidden_states.ndim != 3 or encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("AveragedProbabilitiesProcessor handles plain self-attention (attn1) only")
        batch, tokens, _ = hidden_states.shape
        grid = grid_of(tokens, self.recorder.latent_hw)
        query, key, value = (self._heads(attn, proj(hidden_states)) for proj in (attn.to_q, attn.to_k, attn.to_v))
        chunk = max(1, self.chunk_bytes // (4 * batch * attn.heads * tokens))
        out = torch.empty_like(query)
        for start in range(0, tokens, chunk):
            rows = slice(start, min(start + chunk, tokens))
            scores = torch.matmul(query[:, :, rows].float(), key.float().transpose(-1, -2)) * attn.scale
            probs = scores.softmax(dim=-1)
            out[:, :, rows] = torch.matmul(probs.to(value.dtype), value)
            self.recorder.add_rows(grid, rows, probs.mean(dim=1)[0], first_chunk=start == 0)
        out = out.transpose(1, 2).reshape(batch, tokens, -1)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor

    @staticmethod
    def _heads(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, inner = x.shape
        return x.view(batch, tokens, attn.heads, inner // attn.heads).transpose(1, 2)
