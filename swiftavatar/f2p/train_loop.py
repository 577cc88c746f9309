"""The plain torch loop F2P's face-side networks train with (the face parser, the identity
embedding): shuffled batches, a random horizontal flip per sample, Adam with the rate
cosine-decayed to 5% over the run. Pure torch: the caller says what a batch's loss is."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch


def fit(params: Iterable[torch.nn.Parameter], n: int,
        batch_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, epochs: int,
        batch: int, lr: float, rng: np.random.Generator,
        log: Callable[[str], None] | None = None, name: str = "model") -> list[float]:
    """Train over `n` samples -> per-epoch mean losses. `batch_loss(idx, flip)` gets a batch's
    sample indices (LongTensor) and which of them to flip (BoolTensor) and returns the loss."""
    opt = torch.optim.Adam(list(params), lr=lr)
    steps = epochs * max(n // batch, 1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.05 * lr)
    losses: list[float] = []
    for epoch in range(epochs):
        order = rng.permutation(n)
        total, count = 0.0, 0
        for i in range(0, max(n - batch + 1, 1), batch):
            idx = torch.as_tensor(order[i:i + batch])
            flip = torch.as_tensor(rng.random(len(idx)) < 0.5)
            loss = batch_loss(idx, flip)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + float(loss.detach()), count + 1
        losses.append(total / max(count, 1))
        if log is not None:
            log(f"{name} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}")
    return losses


def flipped(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """x (N, ...) with the samples where `flip` is set mirrored along the last axis."""
    return torch.where(flip.view(-1, *([1] * (x.ndim - 1))), x.flip(-1), x)


__all__ = ["fit", "flipped"]
