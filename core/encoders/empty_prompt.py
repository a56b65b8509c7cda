"""Text conditioning of the empty prompt, computed once per model and kept on disk, so that the
text encoders are loaded only the first time a model is used."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from core.encoders.feature_cache import NPZ_READ_ERRORS


@dataclass
class EmptyPrompt:
    """`hidden` (1, L, D) is the UNet's encoder_hidden_states; `pooled` (1, P) is SDXL's text_embeds."""

    hidden: torch.Tensor
    pooled: Optional[torch.Tensor]

    @staticmethod
    def concatenate(parts: list["EmptyPrompt"]) -> "EmptyPrompt":
        """SDXL: hidden states of both text encoders side by side, pooled output of the last."""
        return EmptyPrompt(torch.cat([p.hidden for p in parts], dim=-1), parts[-1].pooled)


@torch.no_grad()
def encode_empty_prompt(tokenizer, encoder, penultimate: bool) -> EmptyPrompt:
    """Encode "" with one text encoder the way the diffusers pipelines do at guidance_scale=1.

    SD 1.x/2.x use the last hidden state; SDXL the penultimate one of each encoder, and the
    projected pooled output (`text_embeds`) of the encoder that has a projection.
    """
    tokens = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    out = encoder(tokens.input_ids.to(encoder.device), output_hidden_states=penultimate)
    hidden = out.hidden_states[-2] if penultimate else out[0]
    pooled = getattr(out, "text_embeds", None)
    return EmptyPrompt(hidden.float().cpu(), None if pooled is None else pooled.float().cpu())


class EmptyPromptStore:
    """Empty-prompt embeddings on disk, one small .npz per model identity."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def get_or_compute(self, identity: dict, compute: Callable[[], EmptyPrompt]) -> EmptyPrompt:
        """The stored embedding for `identity`, or `compute()` stored for next time.

        An unreadable file is replaced, never fatal."""
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
        path = self.folder / f"{digest}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                pooled = torch.from_numpy(data["pooled"]) if "pooled" in data else None
                return EmptyPrompt(torch.from_numpy(data["hidden"]), pooled)
        except NPZ_READ_ERRORS:
            pass
        prompt = compute()
        arrays = {"hidden": prompt.hidden.numpy()}
        if prompt.pooled is not None:
            arrays["pooled"] = prompt.pooled.numpy()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return prompt
