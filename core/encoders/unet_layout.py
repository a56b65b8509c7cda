"""Where things sit inside a diffusers UNet2DConditionModel: the DiffCut feature layer,
the self-attention layers, the total stride, and pruning of what feature extraction never runs."""
from __future__ import annotations

from torch import nn


def feature_block_index(unet: nn.Module) -> int:
    """Index of the lowest-resolution down block that has attention.

    DiffCut (Couairon et al. 2024, `tools/ldm.py`) hooks `down_blocks[-1]` for the SDXL family
    and `down_blocks[-2]` for SD 1.x, whose last down block has no attention: both are this rule.
    """
    with_attention = [i for i, block in enumerate(unet.down_blocks) if getattr(block, "attentions", None)]
    if not with_attention:
        raise ValueError("the UNet has no down block with attention layers")
    return with_attention[-1]


def feature_layer(unet: nn.Module) -> nn.Module:
    """`attn1` of the last transformer block of the feature block: its output is DiffCut's feature."""
    block = unet.down_blocks[feature_block_index(unet)]
    return block.attentions[-1].transformer_blocks[-1].attn1


def self_attention_layers(unet: nn.Module) -> list[nn.Module]:
    """Every `attn1` in the order the forward pass runs them (down blocks, mid block, up blocks)."""
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    return [tb.attn1 for block in blocks if block is not None
            for attention in (getattr(block, "attentions", None) or [])
            for tb in attention.transformer_blocks]


def total_stride(unet_config: dict, vae_scale_factor: int) -> int:
    """Pixels per cell of the coarsest UNet grid: image sides must be multiples of it."""
    return vae_scale_factor * 2 ** (len(unet_config["block_out_channels"]) - 1)


def prune_after_feature_layer(unet: nn.Module) -> None:
    """Drop every module that runs after the DiffCut feature layer (mid block, up blocks, ...).

    The pruned UNet can only be run with early stopping at the feature layer
    (core.encoders.extraction), which is all the `diffcut` method needs.
    """
    index = feature_block_index(unet)
    block = unet.down_blocks[index]
    unet.down_blocks = nn.ModuleList(list(unet.down_blocks[:index + 1]))
    block.downsamplers = None
    last_transformer = block.attentions[-1]
    last_transformer.proj_out = None
    last_block = last_transformer.transformer_blocks[-1]
    for name in ("attn2", "norm2", "norm3", "ff"):
        setattr(last_block, name, None)
    for name in ("mid_block", "conv_norm_out", "conv_act", "conv_out"):
        setattr(unet, name, None)
    unet.up_blocks = nn.ModuleList()
