"""Optimisation-based GAN inversion for paired data production (paper section 3.2, Eq. 4-6).

`invert` finds W+ codes w* = argmin_w L_invert(y, w) (Eq. 4) for engine renders y with Adam,
`generate_real` maps them through the realistic generator, x = G_real(w*) (Eq. 6).

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
`modified_mean_latent`, a mean over samples without see-through assets (section 4). The latent
term pulls towards the initial code unless another anchor is given.
"""
from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

from swiftavatar.metrics.lpips_offline import LpipsMetric, check_image_range
from swiftavatar.models.generator import SemanticGenerator
from swiftavatar.inversion_terms import (MIN_AREA, colour_term, hard_region_colors,
                                         seg_cross_entropy, texture_rows)
from swiftavatar.semantics import EYEGLASSES, HAIR, HAT, SKIN


@dataclass(frozen=True)
class InversionConfig:
    """Section 4's values: 200 Adam steps at lr 0.1, lambda_i 0.1, lambda_p 1, lambda_l 1."""

    steps: int = 200
    lr: float = 0.1
    lambda_p: float = 1.0           # LPIPS
    lambda_i: float = 0.1           # pixel MSE
    lambda_l: float = 1.0           # latent distance to the anchor (w_mean)
    lpips_size: int = 256           # LPIPS on images avg-pooled to this size (official)
    rampup: float = 0.05            # share of steps with linear lr warm-up
    rampdown: float = 0.25          # share of steps with cosine lr decay to 0
    n_mean: int = 10_000            # samples for the default w_mean
    noise: str = "const"            # render-net noise: fixed buffers, as the official script
    lambda_s: float = 0.0           # segmentation term (engines that render masks; not in the
                                    # paper): cross-entropy of G's seg against the engine mask,
                                    # so each part is drawn by its own class's codes
    seg_temperature: float = 0.1    # G's seg lives on a [-1, 1] one-hot scale: logits seg / T
    lambda_c: float = 0.0           # cross-domain colour term (not in the paper; Eq. 2 at
                                    # inversion): G_real(w)'s mean colour per region against
                                    # the render's, so the realistic face gets the avatar's
                                    # hair, skin, hat and glasses colours
    colour_classes: tuple[int, ...] = (SKIN, HAIR, HAT, EYEGLASSES)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0 or self.lpips_size < 16 or self.n_mean < 1:
            raise ValueError(f"bad InversionConfig: {self}")
        if not (0 <= self.rampup <= 1 and 0 < self.rampdown <= 1):
            raise ValueError("rampup must lie in [0, 1] and rampdown in (0, 1]")
        object.__setattr__(self, "colour_classes", tuple(int(k) for k in self.colour_classes))
        if min(self.lambda_p, self.lambda_i, self.lambda_l, self.lambda_s, self.lambda_c) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.seg_temperature <= 0:
            raise ValueError("seg_temperature must be > 0")


class InversionResult(NamedTuple):
    latents: torch.Tensor                 # (N, n_latent, D) W+ codes w*
    reconstructions: torch.Tensor         # (N, 3, H, W) G(w*) clamped to [-1, 1]
    losses: dict[str, torch.Tensor]       # total / lpips / mse / latent [/ seg / colour], (N,)
    history: torch.Tensor                 # (steps, N) total loss before each update
    masks: torch.Tensor                   # (N, H, W) uint8: argmax of G's seg at w*


class ModifiedMean(NamedTuple):
    w: torch.Tensor                       # (1, D) w~_mean
    fractions: torch.Tensor               # (n,) excluded-class pixel share per sample
    kept: torch.Tensor                    # (n,) bool: samples averaged into w
    threshold: float                      # largest share a kept sample may hold
    rule: str                             # "max_fraction" or "quantile" (see the docstring)


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


@contextmanager
def frozen(G: torch.nn.Module):
    """G in eval mode with requires_grad off for the duration; both restored afterwards."""
    flags = [(p, p.requires_grad) for p in G.parameters()]
    was_training = G.training
    try:
        G.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield G
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        G.train(was_training)


def as_wplus(G: SemanticGenerator, w: torch.Tensor, n: int) -> torch.Tensor:
    """(D,), (1|n, D) or (1|n, n_latent, D) -> (n, n_latent, D) (a new tensor)."""
    R, D = G.n_latent, G.config.style_dim
    if w.ndim == 1:
        w = w[None]
    if w.ndim == 2:
        w = w[:, None].expand(-1, R, -1)
    if w.ndim != 3 or w.shape[1:] != (R, D) or w.shape[0] not in (1, n):
        raise ValueError(f"latent must be (D,), (1|N, D) or (1|N, {R}, {D}) with N={n}, D={D}; "
                         f"got {tuple(w.shape)}")
    return w.expand(n, -1, -1).clone()


def generator_device(G: torch.nn.Module, device: torch.device | str | None = None
                     ) -> torch.device:
    """G's device; raise if `device` names another ("cuda" means the current CUDA device)."""
    own = next(G.parameters()).device
    if device is not None:
        want = torch.device(device)
        if want.type == "cuda" and want.index is None:
            want = torch.device("cuda", torch.cuda.current_device())
        if want != own:
            raise ValueError(f"G lives on {own} but device={device}: move G first "
                             "(G.to(device))")
    return own


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


@torch.no_grad()
def generate_real(G_real: SemanticGenerator, latents: torch.Tensor, *, batch_size: int = 64,
                  noise: str = "const", device: torch.device | str | None = None,
                  with_masks: bool = False):
    """Eq. 6: x = G_real(w) for W+ codes (N, n_latent, D) -> images (N, 3, H, W) in [-1, 1];
    with_masks: (images, masks (N, H, W) uint8, the argmax of G_real's segmentation)."""
    dev = generator_device(G_real, device)
    R, D = G_real.n_latent, G_real.config.style_dim
    if latents.ndim != 3 or latents.shape[1:] != (R, D):
        raise ValueError(f"latents must be W+ (N, {R}, {D}), got {tuple(latents.shape)}")
    out, masks = [], []
    with frozen(G_real):
        for start in range(0, latents.shape[0], batch_size):
            w = latents[start:start + batch_size].to(dev)
            image, seg = G_real(w, input_is_latent=True, noise=noise)     # (b, 3, H, W)
            out.append(image.clamp(-1, 1))
            masks.append(seg.argmax(1).to(torch.uint8))                   # (b, H, W)
    if with_masks:
        return torch.cat(out), torch.cat(masks)
    return torch.cat(out)


__all__ = ["MIN_AREA", "InversionConfig", "colour_term", "hard_region_colors",
           "seg_cross_entropy", "texture_rows", "InversionResult", "ModifiedMean", "as_wplus", "choose_init",
           "class_fractions", "coarse_masks", "frozen", "generate_real", "generator_device",
           "inversion_losses", "invert", "latent_distance", "lr_at", "modified_mean_latent",
           "perceptual", "pixel_mse", "pool_to", "seg_cross_entropy", "colour_term", "texture_rows",
           "hard_region_colors"]
