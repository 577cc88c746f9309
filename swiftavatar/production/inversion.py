"""Optimisation-based GAN inversion for paired data production (paper section 3.2, Eq. 4-5).

`invert` finds W+ codes w* = argmin_w L_invert(y, w) (Eq. 4) for engine renders y with Adam;
`swiftavatar.production.realistic.generate_real` then maps them through the realistic
generator, x = G_real(w*) (Eq. 6).

Loss per image (Eq. 5), every term an average so the paper's weights (1, 0.1, 1) keep the
balance they have in SemanticStyleGAN's own inversion script:
    lambda_p * LPIPS(y, G(w))                      (images avg-pooled to lpips_size if larger)
  + lambda_i * mean over (3, H, W) of (y - G(w))^2
  + lambda_l * mean over (n_latent, D) of (w - w_anchor)^2
The batch loss is the SUM of per-image losses and Adam works per element, so each image's code
follows the same path whether it is inverted alone or in a batch, up to float rounding. Adam
magnifies that rounding on coordinates whose gradient is nearly 0 (its first steps are sign
steps of size lr), so over many steps, or with TF32 convolutions on a GPU, a lone run and a
batch reach codes that differ in such coordinates while their losses stay close.

Learning rate (section 4: Adam, "cosine annealing with 0.1"): SemanticStyleGAN's schedule,
lr_t = 0.1 * min(1, t / 0.05) * (0.5 - 0.5 cos(pi * min(1, (1 - t) / 0.25))), t = (i + 0.5) / T:
a linear warm-up over the first 5% of the steps, full rate, then a cosine decay to 0 over the
last 25%. rampup=0, rampdown=1 gives plain cosine annealing 0.1 * 0.5 * (1 + cos(pi t)).

Initialisation: w_mean, the mean of W over 10^4 mapped samples, broadcast to W+; or w~_mean from
`swiftavatar.production.mean_latent.modified_mean_latent`, a mean over samples without
see-through assets (section 4). The latent
term pulls towards the initial code unless another anchor is given.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import replace
from typing import NamedTuple

import torch
import torch.nn.functional as F

from swiftavatar.metrics.lpips_offline import LpipsMetric, check_image_range
from swiftavatar.models.generator import SemanticGenerator
from swiftavatar.production.inversion_config import InversionConfig
from swiftavatar.production.inversion_terms import colour_term, seg_cross_entropy
from swiftavatar.production.wplus import as_wplus, frozen, generator_device


class InversionResult(NamedTuple):
    latents: torch.Tensor                 # (N, n_latent, D) W+ codes w*
    reconstructions: torch.Tensor         # (N, 3, H, W) G(w*) clamped to [-1, 1]
    losses: dict[str, torch.Tensor]       # total / lpips / mse / latent [/ seg / colour], (N,)
    history: torch.Tensor                 # (steps, N) total loss before each update
    masks: torch.Tensor                   # (N, H, W) uint8: argmax of G's seg at w*


def lr_at(step: int, steps: int, lr: float, rampup: float = 0.05,
          rampdown: float = 0.25) -> float:
    """Learning rate of step `step` of `steps` (module docstring), never 0 at either end."""
    t = (step + 0.5) / steps
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / rampdown))
    up = min(1.0, t / rampup) if rampup > 0 else 1.0
    return lr * up * down


def latent_distance(w: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Eq. 5 latent term: (N, R, D) codes vs (N|1, R, D) anchor -> (N,) mean squared distance."""
    return (w - anchor).square().flatten(1).mean(1)


def pixel_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. 5 image term: (N, 3, H, W) pair -> (N,) mean squared error."""
    return (a - b).square().flatten(1).mean(1)


def pool_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Average-pool (N, C, H, W) down to size x size when larger (the official LPIPS input)."""
    return F.adaptive_avg_pool2d(x, size) if x.shape[-1] > size else x


def perceptual(lpips: LpipsMetric, image: torch.Tensor, target_feats: list[torch.Tensor],
               size: int) -> torch.Tensor:
    """Eq. 5 LPIPS term -> (N,): image (N, 3, H, W) pooled to `size`, against target features
    computed once with `lpips.features(pool_to(targets, size))`."""
    return lpips.distance(lpips.features(pool_to(image, size), check_range=False), target_feats)


def inversion_losses(G: SemanticGenerator, w: torch.Tensor, targets: torch.Tensor,
                     anchor: torch.Tensor, lpips: LpipsMetric | None, cfg: InversionConfig,
                     target_feats: list[torch.Tensor] | None = None,
                     target_masks: torch.Tensor | None = None,
                     g_real: SemanticGenerator | None = None
                     ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Per-image Eq. 5 terms (each (N,)), the rendered images (N, 3, H, W) and G's seg
    (N, K, H, W); with cfg.lambda_s > 0 and `target_masks` (N, H, W) the segmentation term,
    with cfg.lambda_c > 0 and `g_real` the cross-domain colour term too."""
    image, seg = G(w, input_is_latent=True, noise=cfg.noise)             # (N, 3, H, W)
    mse = pixel_mse(image, targets)
    lat = latent_distance(w, anchor)
    if lpips is not None:
        if target_feats is None:
            with torch.no_grad():
                target_feats = lpips.features(pool_to(targets, cfg.lpips_size))
        lp = perceptual(lpips, image, target_feats, cfg.lpips_size)
    else:
        lp = torch.zeros_like(mse)
    total = cfg.lambda_p * lp + cfg.lambda_i * mse + cfg.lambda_l * lat
    out = {"total": total, "lpips": lp, "mse": mse, "latent": lat}
    if cfg.lambda_s > 0 and target_masks is not None:
        out["seg"] = seg_cross_entropy(seg, target_masks, cfg.seg_temperature)
        out["total"] = out["total"] + cfg.lambda_s * out["seg"]
    if cfg.lambda_c > 0 and g_real is not None:
        out["colour"] = colour_term(g_real, w, targets, seg, cfg, target_masks)
        out["total"] = out["total"] + cfg.lambda_c * out["colour"]
    return out, image, seg


def _prepare_targets(G: SemanticGenerator, targets: torch.Tensor, device) -> torch.Tensor:
    """Check (N, 3, H, W) in [-1, 1]; resize (bilinear, antialiased) to G's size if needed."""
    if targets.ndim != 4 or targets.shape[1] != 3 or targets.shape[0] < 1:
        raise ValueError(f"targets must be (N, 3, H, W) RGB, got {tuple(targets.shape)}")
    check_image_range(targets, "targets")
    y = targets.to(device=device, dtype=next(G.parameters()).dtype)
    S = G.config.size
    if y.shape[-2:] != (S, S):
        y = F.interpolate(y, size=(S, S), mode="bilinear", align_corners=False, antialias=True)
    return y


def _prepare_masks(G: SemanticGenerator, masks: torch.Tensor, n: int, device) -> torch.Tensor:
    """Check (N, H, W) class ids; nearest-neighbour resize to G's size -> long on device."""
    if masks.ndim != 3 or masks.shape[0] != n:
        raise ValueError(f"masks must be (N={n}, H, W) class ids, got {tuple(masks.shape)}")
    m = masks.to(device=device, dtype=torch.long)
    if int(m.min()) < 0 or int(m.max()) >= G.config.num_classes:
        raise ValueError(f"mask class ids must lie in 0..{G.config.num_classes - 1}")
    S = G.config.size
    if m.shape[-2:] != (S, S):
        m = F.interpolate(m[:, None].float(), size=(S, S), mode="nearest")[:, 0].long()
    return m


def invert(G: SemanticGenerator, targets: torch.Tensor, config: InversionConfig | None = None,
           *, w_init: torch.Tensor | None = None, w_anchor: torch.Tensor | None = None,
           lpips: LpipsMetric | None = None, device: torch.device | str | None = None,
           seed: int = 0, progress: bool = False, masks: torch.Tensor | None = None,
           g_real: SemanticGenerator | None = None, **overrides) -> InversionResult:
    """Invert target images (Eq. 4-5) -> InversionResult.

    G: the avatar generator, frozen (eval, no parameter grads) while this runs and then restored;
       `device` (default: G's device) must be where G lives.
    targets: (N, 3, H, W) RGB in [-1, 1]; other sizes are resized to G's (bilinear, antialias).
    w_init: the start code, (D,), (1|N, D) or (1|N, n_latent, D); None -> w_mean over
       config.n_mean samples (seeded by `seed` on G's device). w_anchor: the latent term's
       target (same shapes; None -> the start code). lpips: an LpipsMetric; None drops the
       LPIPS term (tests).
    overrides: InversionConfig fields (steps=..., lr=..., lambda_p=...).
    """
    cfg = replace(config or InversionConfig(), **overrides)
    if cfg.lambda_s is None:
        raise ValueError("lambda_s is None (pick per engine): resolve it to a number first "
                         "(swiftavatar.production.config.ProduceConfig.resolved_inversion)")
    dev = generator_device(G, device)
    y = _prepare_targets(G, targets, dev)                                  # (N, 3, S, S)
    N = y.shape[0]
    m = None
    if cfg.lambda_s > 0:
        if masks is None:
            raise ValueError("lambda_s > 0 needs the targets' masks (an engine that renders "
                             "masks), or set lambda_s=0")
    if masks is not None:
        m = _prepare_masks(G, masks, N, dev)                               # (N, S, S) long
    if cfg.lambda_c > 0 and g_real is None:
        raise ValueError("lambda_c > 0 needs g_real (the realistic generator), or set "
                         "lambda_c=0")
    if g_real is not None and cfg.lambda_c > 0:
        generator_device(g_real, dev)
    else:
        g_real = None
    with frozen(G), (frozen(g_real) if g_real is not None else nullcontext()):
        if w_init is None:
            gen = torch.Generator(device=dev).manual_seed(seed)
            w_init = G.mean_latent(cfg.n_mean, device=dev, generator=gen)   # (1, D)
        w0 = as_wplus(G, w_init.to(dev), N)                                 # (N, R, D)
        anchor = as_wplus(G, w_anchor.to(dev), N) if w_anchor is not None else w0.clone()
        w = w0.clone().requires_grad_(True)
        feats = None
        if lpips is not None:
            with torch.no_grad():                         # the targets' features, once
                feats = lpips.features(pool_to(y, cfg.lpips_size), check_range=False)
        opt = torch.optim.Adam([w], lr=cfg.lr)
        history = []
        steps = range(cfg.steps)
        if progress:
            from tqdm.auto import tqdm
            steps = tqdm(steps, desc=f"invert x{N}", leave=False)
        for i in steps:
            for group in opt.param_groups:
                group["lr"] = lr_at(i, cfg.steps, cfg.lr, cfg.rampup, cfg.rampdown)
            losses, _, _ = inversion_losses(G, w, y, anchor, lpips, cfg, feats, m, g_real)
            opt.zero_grad(set_to_none=True)
            losses["total"].sum().backward()           # sum: per-image gradients as if alone
            opt.step()
            history.append(losses["total"].detach())
        with torch.no_grad():
            losses, image, seg = inversion_losses(G, w, y, anchor, lpips, cfg, feats, m, g_real)
    return InversionResult(w.detach(), image.clamp(-1, 1),
                           {k: v.detach() for k, v in losses.items()}, torch.stack(history),
                           seg.argmax(1).to(torch.uint8))


__all__ = ["InversionResult", "inversion_losses", "invert",
           "latent_distance", "lr_at", "perceptual", "pixel_mse", "pool_to"]
