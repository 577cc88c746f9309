"""The imitator's training losses, as in F2P: the L1 distance between the engine's render and
the imitator's image (pixels in [-1, 1]); optionally an LPIPS term (a perceptual distance from
swiftavatar.metrics.build_lpips) with its own weight. Free functions on tensors."""
from __future__ import annotations

from typing import Callable

import torch

Perceptual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (N,3,S,S) x2 -> (N,)


def pixel_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two (N, 3, S, S) batches in [-1, 1] (a scalar)."""
    assert pred.shape == target.shape and pred.ndim == 4, (pred.shape, target.shape)
    return (pred - target).abs().mean()


def imitator_loss(pred: torch.Tensor, target: torch.Tensor, *,
                  perceptual: Perceptual | None = None, perceptual_weight: float = 0.0
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 + perceptual_weight * mean LPIPS -> (loss, {"l1", "lpips" when used})."""
    l1 = pixel_l1(pred, target)
    parts = {"l1": float(l1.detach())}
    loss = l1
    if perceptual is not None and perceptual_weight > 0:
        p = perceptual(pred, target).mean()
        parts["lpips"] = float(p.detach())
        loss = loss + perceptual_weight * p
    return loss, parts


__all__ = ["Perceptual", "imitator_loss", "pixel_l1"]
