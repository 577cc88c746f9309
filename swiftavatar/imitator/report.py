"""How close the imitator comes to the engine: L1 and LPIPS between its images and the
engine's held-out renders (mean and standard error over rows), and a picture of pairs
(held-out render | imitator). Pixels are compared in [-1, 1] at the imitator's size."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from swiftavatar.imitator.loop import images_to_tensor
from swiftavatar.imitator.model import Imitator, onehot_inputs
from swiftavatar.viz import grid


@torch.no_grad()
def imitate(model: Imitator, rows: Mapping[str, np.ndarray], batch: int = 64
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(imitator images, engine renders), both (N, 3, S, S) in [-1, 1] on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    size = model.cfg.image_size
    preds, targets = [], []
    for i in range(0, len(rows["image"]), batch):
        cont = torch.as_tensor(rows["cont"][i:i + batch], dtype=torch.float32)
        disc = torch.as_tensor(rows["disc"][i:i + batch], dtype=torch.int64)
        x = onehot_inputs(cont, disc, model.num_options).to(device)
        preds.append(model(x).cpu())
        targets.append(images_to_tensor(rows["image"][i:i + batch], size, torch.device("cpu")))
    return torch.cat(preds), torch.cat(targets)


@torch.no_grad()
def accuracy_report(model: Imitator, rows: Mapping[str, np.ndarray], lpips: Any = None,
                    batch: int = 64) -> dict[str, float]:
    """{"rows", "l1", "l1_se"[, "lpips", "lpips_se"]} over the given held-out rows; `lpips` is
    a swiftavatar.metrics LpipsMetric (None: L1 only)."""
    pred, target = imitate(model, rows, batch)
    out: dict[str, float] = {"rows": int(len(pred))}
    out.update(_mean_se("l1", (pred - target).abs().mean((1, 2, 3))))
    if lpips is not None:
        d = torch.cat([lpips(pred[i:i + batch], target[i:i + batch]).cpu()
                       for i in range(0, len(pred), batch)])
        out.update(_mean_se("lpips", d))
    return out


def sample_sheet(model: Imitator, rows: Mapping[str, np.ndarray], n: int = 8) -> np.ndarray:
    """(H, W, 3) uint8: n pairs, each held-out render then the imitator's image."""
    n = min(n, len(rows["image"]))
    pred, target = imitate(model, {k: v[:n] for k, v in rows.items()})
    pairs = torch.stack([target, pred], 1).reshape(2 * n, *pred.shape[1:])
    tiles = ((pairs.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return grid(tiles, ncols=min(8, 2 * n))


def _mean_se(name: str, values: torch.Tensor) -> dict[str, float]:
    v = values.double()
    se = float(v.std() / len(v) ** 0.5) if len(v) > 1 else 0.0
    return {name: float(v.mean()), f"{name}_se": se}


__all__ = ["accuracy_report", "imitate", "sample_sheet"]
