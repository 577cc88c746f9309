"""Which generator weights a G_avatar finetune may change (paper section 2: freezing the layers
that carry structure keeps the two domains' meaning of a code tied).

SemanticStyleGAN separates shape from texture: the mapping network, the position embedding,
the local generators' first `depth_layers` layers and the pseudo-depth heads decide the coarse
masks (the layout); the later local layers, the feature heads and the render net decide how
each region looks. With `freeze="shape"` only the second group trains, so G_avatar(w) has
exactly G_real(w)'s coarse layout for every code w: a hat, glasses or long hair that inversion
finds in an avatar is the same region in the realistic face.

The local generators keep their K x L weights stacked in single tensors, so a freeze is an
element mask per parameter, applied by zeroing gradients (Adam then leaves the frozen elements
bit-identical: its moments stay 0 and its update is 0).
"""
from __future__ import annotations

import torch
from torch import nn

from swiftavatar.models.generator import SemanticGenerator

FREEZE_MODES = ("none", "shape")
# The local generators' per-layer tensors: their leading axis is the layer index.
_PER_LAYER = ("weight", "mod_weight", "mod_bias", "act_bias")
# Tensors that only serve the layout.
_SHAPE_ONLY = ("pos_embed", "depth_weight", "depth_mod", "depth_bias")


def frozen_elements(g: SemanticGenerator, mode: str) -> dict[str, torch.Tensor]:
    """{parameter name: bool tensor of its shape, True where the element is frozen} for the
    parameters `mode` freezes at least partly ("none": empty)."""
    if mode not in FREEZE_MODES:
        raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {mode!r}")
    if mode == "none":
        return {}
    depth_layers = g.config.depth_layers
    out: dict[str, torch.Tensor] = {}
    for name, p in g.named_parameters():
        mask = torch.zeros(p.shape, dtype=torch.bool, device=p.device)
        if name.startswith("style."):
            mask[...] = True                                  # mapping network: z -> w
        elif name.startswith("local."):
            leaf = name.split(".", 1)[1]
            if leaf.split(".")[0] in _SHAPE_ONLY:
                mask[...] = True
            elif leaf in _PER_LAYER:
                mask[:depth_layers] = True                    # layers up to the depth read-out
        if mask.any():
            out[name] = mask
    return out


def freeze_gradients(g: nn.Module, frozen: dict[str, torch.Tensor]
                     ) -> list[torch.utils.hooks.RemovableHandle]:
    """Register gradient hooks on `g`'s parameters that zero the frozen elements; returns the
    hook handles. Parameters named in `frozen` must exist in `g`."""
    params = dict(g.named_parameters())
    missing = sorted(set(frozen) - set(params))
    if missing:
        raise KeyError(f"no parameters {missing} in the generator")
    handles = []
    for name, mask in frozen.items():
        keep = (~mask).to(params[name].dtype)
        handles.append(params[name].register_hook(lambda grad, keep=keep: grad * keep))
    return handles


def frozen_count(frozen: dict[str, torch.Tensor]) -> int:
    """Number of frozen elements."""
    return int(sum(int(m.sum()) for m in frozen.values()))


__all__ = ["FREEZE_MODES", "freeze_gradients", "frozen_count", "frozen_elements"]
