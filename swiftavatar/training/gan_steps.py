"""The per-step math of generator training (paper Eq. 1-3), as small functions over modules.

Each function runs one optimiser step and returns its scalar metrics. `nets.g` / `nets.d` may
be DistributedDataParallel wrappers: gradient steps call them (so DDP averages gradients over
workers); passes that need no synchronised gradients call the plain modules `nets.g_mod` /
`nets.d_mod`. Each synchronised loss adds `0 * output` terms so that every parameter of the
wrapped module is in the backward graph (DDP waits for all of them), as StyleGAN2 does.

Schedules (step i counts from 0): lazy R1 when i % r1_every == 0, lazy path length when
i % path_every == 0, both with their weight multiplied by the interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from swiftavatar.models import (Discriminator, SemanticGenerator, color_matching_loss,
                                d_logistic_loss, g_nonsaturating_loss, path_length_penalty,
                                r1_penalty)
from swiftavatar.models.generator import GeneratorOutput


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


@dataclass
class GanNets:
    """The models and optimisers of one worker."""

    g: nn.Module                         # trained generator (maybe DDP-wrapped)
    d: nn.Module                         # discriminator (maybe DDP-wrapped)
    g_ema: SemanticGenerator             # exponential moving average of g (never wrapped)
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer
    g_real: SemanticGenerator | None = None  # frozen G_real (avatar domain, Eq. 2)

    @property
    def g_mod(self) -> SemanticGenerator:
        return unwrap(self.g)

    @property
    def d_mod(self) -> Discriminator:
        return unwrap(self.d)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def is_due(step: int, every: int, weight: float = 1.0) -> bool:
    """Whether a lazy regulariser with this interval (and weight) runs at `step`."""
    return weight > 0 and step % every == 0


def sample_z(n: int, dim: int, mixing: float, rng: torch.Generator,
             device: torch.device | str) -> list[torch.Tensor]:
    """[z] or, with probability `mixing`, [z1, z2] for style mixing; each (n, dim)."""
    k = 2 if mixing > 0 and float(torch.rand((), generator=rng)) < mixing else 1
    return [torch.randn(n, dim, generator=rng).to(device) for _ in range(k)]


def _d_args(d: Discriminator, image: torch.Tensor, seg: torch.Tensor | None):
    """D's inputs: (image, seg) for the two-branch D, (image,) for the image-only one."""
    if d.config.seg:
        if seg is None:
            raise ValueError("the two-branch discriminator needs masks with the real images")
        return image, seg
    return (image,)


def mask_consistency_loss(out: GeneratorOutput) -> torch.Tensor:
    """SemanticStyleGAN's mask loss: coarse mask (on the [-1, 1] scale) vs the fine seg map
    average-pooled to the coarse grid, mean squared difference."""
    coarse = 2.0 * out.mask_coarse - 1.0                                   # (N, K, G, G)
    fine = F.adaptive_avg_pool2d(out.seg, coarse.shape[-2:])               # (N, K, G, G)
    return (coarse - fine).square().mean()


def to_training_tensors(batch: dict[str, torch.Tensor], num_classes: int,
                        device: torch.device | str, flip: torch.Generator | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 batch -> image (N, 3, H, W) float32 in [-1, 1], seg (N, K, H, W) = one_hot*2-1
    (None without masks). `flip`: random horizontal flips drawn from this generator."""
    image = torch.as_tensor(batch["image"]).to(device)
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"image batch must be (N, H, W, 3), got {tuple(image.shape)}")
    img = image.permute(0, 3, 1, 2).float() / 127.5 - 1.0                # (N, 3, H, W)
    seg = None
    if "mask" in batch:
        mask = torch.as_tensor(batch["mask"]).to(device).long()              # (N, H, W)
        seg = F.one_hot(mask, num_classes).permute(0, 3, 1, 2).float() * 2.0 - 1.0
    if flip is not None:
        which = (torch.rand(img.shape[0], generator=flip) < 0.5).to(img.device)
        img = torch.where(which[:, None, None, None], img.flip(-1), img)
        if seg is not None:
            seg = torch.where(which[:, None, None, None], seg.flip(-1), seg)
    return img.contiguous(), None if seg is None else seg.contiguous()


def d_step(nets: GanNets, real_img: torch.Tensor, real_seg: torch.Tensor | None,
           mixing: float, rng: torch.Generator) -> dict[str, float]:
    """Eq. 1, L_adv for D (non-saturating logistic) on real images and G's fakes."""
    g, d = nets.g_mod, nets.d_mod
    set_requires_grad(d, True)
    z = sample_z(real_img.shape[0], g.config.style_dim, mixing, rng, real_img.device)
    with torch.no_grad():
        fake_img, fake_seg = g(z, mixing_generator=rng)
    fake_pred = nets.d(*_d_args(d, fake_img, fake_seg))                  # (N, 1)
    real_pred = nets.d(*_d_args(d, real_img, real_seg))                  # (N, 1)
    loss = d_logistic_loss(real_pred, fake_pred)
    nets.d_opt.zero_grad(set_to_none=True)
    loss.backward()
    nets.d_opt.step()
    return {"d": loss.item(), "real_score": real_pred.mean().item(),
            "fake_score": fake_pred.mean().item()}


def r1_step(nets: GanNets, real_img: torch.Tensor, real_seg: torch.Tensor | None,
            gamma: float, gamma_seg: float, every: int) -> dict[str, float]:
    """Eq. 1, lazy R1: (gamma/2 R1(image) + gamma_seg/2 R1(mask)) * every, on real data."""
    d = nets.d_mod
    img = real_img.detach().requires_grad_(True)
    seg = real_seg.detach().requires_grad_(True) if d.config.seg else None
    pred = nets.d(*_d_args(d, img, seg))
    if seg is not None:
        pen_img, pen_seg = r1_penalty(pred, (img, seg))
    else:
        pen_img, pen_seg = r1_penalty(pred, img), pred.new_zeros(())
    loss = (gamma / 2 * pen_img + gamma_seg / 2 * pen_seg) * every + 0.0 * pred.sum()
    nets.d_opt.zero_grad(set_to_none=True)
    loss.backward()
    nets.d_opt.step()
    return {"r1_img": pen_img.item(), "r1_seg": pen_seg.item()}


def g_step(nets: GanNets, n: int, mixing: float, rng: torch.Generator, lambda_mask: float,
           lambda_color: float = 0.0, color_temperature: float = 0.1,
           color_classes: Sequence[int] | None = None,
           shared_layout: bool = False) -> dict[str, float]:
    """Eq. 3: L_adv for G (+ lambda_mask mask loss) + lambda_color * L_color (Eq. 2).

    L_color compares G_real(z) (frozen, no grad) with G(z) for the same z and the same style
    mixing draw, on each image's own seg regions; only when nets.g_real is set. With
    `shared_layout` (G's layout path is frozen, so both have G_real's layout) both images are
    read in G_real's regions: a part drawn over another part's region (a hat painted on the
    hair) then costs colour."""
    g, d = nets.g_mod, nets.d_mod
    device = next(g.parameters()).device
    set_requires_grad(g, True)
    set_requires_grad(d, False)
    try:
        z = sample_z(n, g.config.style_dim, mixing, rng, device)
        mix_seed = int(torch.randint(0, 2 ** 31 - 1, (), generator=rng))
        out = nets.g(z, return_all=True,
                     mixing_generator=torch.Generator().manual_seed(mix_seed))
        pred = d(*_d_args(d, out.image, out.seg))
        adv = g_nonsaturating_loss(pred)
        loss = adv + 0.0 * out.seg.mean()                  # DDP: the seg head is always used
        metrics = {"g": adv.item()}
        if lambda_mask > 0:
            mask = mask_consistency_loss(out)
            loss = loss + lambda_mask * mask
            metrics["mask"] = mask.item()
        if nets.g_real is not None:
            with torch.no_grad():
                ref_img, ref_seg = nets.g_real(
                    z, mixing_generator=torch.Generator().manual_seed(mix_seed))
            kw = {} if color_classes is None else {"classes": tuple(color_classes)}
            seg_b = ref_seg if shared_layout else out.seg
            color = color_matching_loss(ref_img, ref_seg, out.image, seg_b,
                                        temperature=color_temperature, **kw)   # Eq. 2
            loss = loss + lambda_color * color                                  # Eq. 3
            metrics["color"] = color.item()
        nets.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        nets.g_opt.step()
    finally:
        set_requires_grad(d, True)
    return metrics


def path_step(nets: GanNets, n: int, mixing: float, rng: torch.Generator,
              mean_path_length: torch.Tensor, weight: float, every: int, decay: float
              ) -> tuple[dict[str, float], torch.Tensor]:
    """Eq. 1, lazy path length on n samples; the gradient is taken w.r.t. the per-layer codes
    (N, K, L, D) the local generators read. Returns (metrics, new running mean)."""
    g = nets.g_mod
    device = next(g.parameters()).device
    set_requires_grad(g, True)
    z = sample_z(n, g.config.style_dim, mixing, rng, device)
    out = nets.g(z, return_all=True, mixing_generator=rng)
    penalty, new_mean, lengths = path_length_penalty(out.image, out.latents,
                                                     mean_path_length.to(device), decay)
    loss = weight * every * penalty + 0.0 * (out.image.sum() + out.seg.sum())
    nets.g_opt.zero_grad(set_to_none=True)
    loss.backward()
    nets.g_opt.step()
    return ({"path": penalty.item(), "path_length": lengths.mean().item()},
            new_mean.detach().cpu())


def ema_beta(half_life_images: float, global_batch: int, images_seen: int = 0,
             rampup: float | None = None) -> float:
    """Per-step decay of G_ema: half of the weight is older than `half_life_images` images
    (StyleGAN2); with `rampup` the half-life is at most images_seen * rampup early on."""
    half = half_life_images
    if rampup is not None:
        half = min(half, max(images_seen, global_batch) * rampup)
    return 0.5 ** (global_batch / half)


@torch.no_grad()
def ema_update(g_ema: nn.Module, g: nn.Module, beta: float) -> None:
    """g_ema <- beta * g_ema + (1 - beta) * g for parameters; buffers are copied."""
    for p_ema, p in zip(g_ema.parameters(), g.parameters()):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(g_ema.buffers(), g.buffers()):
        b_ema.copy_(b)


__all__ = ["GanNets", "d_step", "ema_beta", "ema_update", "g_step", "is_due",
           "mask_consistency_loss", "path_step", "r1_step", "sample_z", "set_requires_grad",
           "to_training_tensors", "unwrap"]
