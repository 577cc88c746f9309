"""Start codes of the inversion (section 4): w~_mean, the mean of W over samples that show no
see-through asset (glasses), and the per-image choice between it and w_mean. Pure torch."""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch

from swiftavatar.models.generator import SemanticGenerator
from swiftavatar.production.wplus import as_wplus, frozen, generator_device
from swiftavatar.semantics import EYEGLASSES


class ModifiedMean(NamedTuple):
    w: torch.Tensor                       # (1, D) w~_mean
    fractions: torch.Tensor               # (n,) excluded-class pixel share per sample
    kept: torch.Tensor                    # (n,) bool: samples averaged into w
    threshold: float                      # largest share a kept sample may hold
    rule: str                             # "max_fraction" or "quantile" (see the docstring)


def coarse_masks(G: SemanticGenerator, w: torch.Tensor) -> torch.Tensor:
    """Coarse masks (N, K, G, G) of codes w ((N, D) or W+): the softmax over the local
    generators' pseudo-depths, as in G's forward, without running the render net."""
    lat = G.expand_latents(as_wplus(G, w, w.shape[0]))
    _, depths = G.local(lat)                                              # (N, K, P)
    g = G.config.grid
    return torch.softmax(depths, dim=1).reshape(w.shape[0], -1, g, g)


@torch.no_grad()
def class_fractions(G: SemanticGenerator, w: torch.Tensor,
                    classes: Sequence[int] = (EYEGLASSES,)) -> torch.Tensor:
    """(N,) share of coarse-mask pixels whose argmax class is in `classes`."""
    labels = coarse_masks(G, w).argmax(1)                                 # (N, G, G)
    hit = torch.zeros_like(labels, dtype=torch.bool)
    for k in classes:
        hit |= labels == k
    return hit.flatten(1).float().mean(1)


@torch.no_grad()
def modified_mean_latent(G: SemanticGenerator, n: int = 10_000,
                         exclude_classes: Sequence[int] = (EYEGLASSES,),
                         max_fraction: float = 0.002, min_kept: float = 0.05,
                         batch_size: int = 500, seed: int = 0,
                         device: torch.device | str | None = None) -> ModifiedMean:
    """w~_mean (section 4): the mean of W over samples showing none of `exclude_classes`.

    Starting from w_mean can leave see-through assets (glasses) in the code: they barely change
    the image, so the image losses hardly push them out, yet G_real draws them. So draw n codes
    w = mapping(z), measure each one's share of coarse-mask pixels (`class_fractions`) in the
    excluded classes, and average the samples with share <= max_fraction (rule "max_fraction").
    If fewer than min_kept * n samples pass (an untrained G, or one that draws the class almost
    always), keep the min_kept * n samples with the smallest share instead (rule "quantile").
    Costs n mapping + local-generator passes (no render net).
    """
    if not 0 < min_kept <= 1 or n < 1:
        raise ValueError("need n >= 1 and 0 < min_kept <= 1")
    K = G.config.num_classes
    if any(not 0 <= k < K for k in exclude_classes):
        raise ValueError(f"exclude_classes {tuple(exclude_classes)} outside 0..{K - 1}")
    dev = generator_device(G, device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    with frozen(G):
        ws, fracs = [], []
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), G.config.style_dim, device=dev,
                            generator=gen)
            w = G.mapping(z)                                              # (b, D)
            ws.append(w)
            fracs.append(class_fractions(G, w, exclude_classes))
    w_all, frac = torch.cat(ws), torch.cat(fracs)                         # (n, D), (n,)
    need = max(1, math.ceil(min_kept * n))
    kept, threshold, rule = frac <= max_fraction, float(max_fraction), "max_fraction"
    if int(kept.sum()) < need:
        threshold = float(frac.kthvalue(need).values)
        order = torch.argsort(frac, stable=True)[:need]
        kept = torch.zeros_like(kept)
        kept[order] = True
        rule = "quantile"
    return ModifiedMean(w_all[kept].mean(0, keepdim=True), frac, kept, threshold, rule)


def choose_init(G: SemanticGenerator, n: int, w_mean: torch.Tensor, w_tilde: torch.Tensor,
                masks: torch.Tensor | None = None, *, policy: str = "paper",
                exclude_classes: Sequence[int] = (EYEGLASSES,), min_fraction: float = 0.002
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Start codes for n targets -> (init (n, n_latent, D), used_tilde (n,) bool).

    policy "paper" (default): w~_mean for every image, as section 4 does; engine masks are not
    needed. The image losses can draw glasses in where the target has them (their frames are
    visible), but can hardly remove phantom glasses a start code brings (they are see-through).
    policy "masks": use the engine's masks (n, H, W) class ids: w_mean where the render shows
    an excluded class on more than min_fraction of its pixels, w~_mean elsewhere.
    """
    if policy == "paper":
        used = torch.ones(n, dtype=torch.bool)
    elif policy == "masks":
        if masks is None or masks.ndim != 3 or masks.shape[0] != n:
            raise ValueError(f"policy 'masks' needs engine masks (n={n}, H, W) of class ids")
        hit = torch.zeros_like(masks, dtype=torch.bool)
        for k in exclude_classes:
            hit |= masks == k
        used = hit.flatten(1).float().mean(1).cpu() <= min_fraction
    else:
        raise ValueError(f"policy must be 'paper' or 'masks', got {policy!r}")
    a, b = as_wplus(G, w_tilde, n), as_wplus(G, w_mean.to(w_tilde.device), n)
    return torch.where(used.to(a.device)[:, None, None], a, b), used


__all__ = ["ModifiedMean", "choose_init", "class_fractions", "coarse_masks",
           "modified_mean_latent"]
