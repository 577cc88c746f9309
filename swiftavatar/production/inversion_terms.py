"""Two inversion terms beyond the paper's Eq. 5 that tie the realistic face to the render.

* segmentation: cross-entropy of G_avatar's segmentation against the engine's class-id mask, so
  each part of the render is drawn by its own class's codes (LPIPS and MSE alone reproduce a hat
  with hair or background codes, and G_real then draws no hat);
* cross-domain colour: Eq. 2's distance between G_real(w)'s mean colour per region and the
  render's, with gradients only into W+'s texture rows.

Pure torch; `swiftavatar.production.inversion` adds them to the loss when their weights are > 0.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

from swiftavatar.models.generator import SemanticGenerator
from swiftavatar.models.losses import region_mean_colors

if TYPE_CHECKING:
    from swiftavatar.production.inversion_config import InversionConfig

MIN_AREA = 1e-3   # a region under this share of the image is absent (colour terms skip it)


def seg_cross_entropy(seg: torch.Tensor, masks: torch.Tensor, temperature: float
                      ) -> torch.Tensor:
    """Mean per-pixel cross-entropy of G's seg (N, K, H, W) (logits seg / T) against class-id
    masks (N, H, W) long -> (N,)."""
    return F.cross_entropy(seg / temperature, masks, reduction="none").flatten(1).mean(1)


def hard_region_colors(images: torch.Tensor, masks: torch.Tensor, classes: Sequence[int]
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean colour per class of class-id masks: images (N, 3, H, W), masks (N, H, W) ->
    colours (N, S, 3) and area shares (N, S)."""
    hit = torch.stack([(masks == k) for k in classes], 1).to(images.dtype)   # (N, S, H, W)
    mass = hit.sum((2, 3))                                                  # (N, S)
    colors = torch.einsum("nshw,nchw->nsc", hit, images) / mass.clamp_min(1.0)[..., None]
    return colors, mass / (images.shape[2] * images.shape[3])


def texture_rows(G: SemanticGenerator) -> torch.Tensor:
    """(n_latent,) bool: the W+ rows that are texture codes (row 3 + 2k for class k)."""
    rows = torch.zeros(G.n_latent, dtype=torch.bool)
    rows[[G.texture_index(k) for k in range(G.config.num_classes)]] = True
    return rows


def colour_term(g_real: SemanticGenerator, w: torch.Tensor, targets: torch.Tensor,
                target_seg: torch.Tensor, cfg: InversionConfig,
                target_masks: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-domain colour term -> (N,): sum over the regions both show of the squared
    distance between G_real(w)'s mean colour (in its own segmentation) and the target's (in
    the engine's mask, or else in G_avatar's segmentation `target_seg` of its
    reconstruction). Eq. 2's distance, between the render and the realistic face."""
    classes = cfg.colour_classes
    # colour is texture: the term moves only the texture rows of W+ and reads G_real's regions
    # as they are (the layout is left to the image and segmentation terms)
    tex = texture_rows(g_real).to(w.device)                                 # (R,) bool
    w_c = torch.where(tex[None, :, None], w, w.detach())
    image, seg = g_real(w_c, input_is_latent=True, noise=cfg.noise)      # (N, 3, H, W)
    col, _ = region_mean_colors(image, seg.detach(), classes, cfg.seg_temperature)  # (N, S, 3)
    if target_masks is not None:
        ref, ref_area = hard_region_colors(targets, target_masks, classes)
    else:
        ref, ref_area = region_mean_colors(targets, target_seg.detach(), classes,
                                           cfg.seg_temperature)
    # gated on the target alone: a region the render shows is scored even where G_real draws
    # little of it (its soft mask still has a mean), so dropping the region never pays
    present = (ref_area > MIN_AREA).to(col.dtype)                       # (N, S)
    return ((col - ref).square().sum(-1) * present).sum(1)


__all__ = ["MIN_AREA", "colour_term", "hard_region_colors", "seg_cross_entropy", "texture_rows"]
