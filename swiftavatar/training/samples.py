"""Sample grids of generators: images with their colourised segmentation, one column per z.

Real pretraining: row 1 G_ema(z), row 2 its masks. Avatar finetuning: G_real(z) and its masks
above G_avatar(z) and its masks, for the same fixed z (the dual-domain pairs of Fig. 4).
"""
from __future__ import annotations

import numpy as np
import torch

from swiftavatar.models import SemanticGenerator
from swiftavatar.semantics import colorize
from swiftavatar.viz import grid


def fixed_z(n: int, dim: int, seed: int) -> torch.Tensor:
    """(n, dim) latents that depend only on (n, dim, seed)."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(int(seed)))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def seg_to_classes(seg: torch.Tensor) -> np.ndarray:
    """(N, K, H, W) seg maps -> (N, H, W) uint8 class ids (argmax)."""
    return seg.argmax(1).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def generator_rows(g: SemanticGenerator, z: torch.Tensor) -> list[np.ndarray]:
    """[images (N, H, W, 3), colourised masks (N, H, W, 3)] of g(z), constant noise."""
    was_training = g.training
    g.eval()
    try:
        img, seg = g(z.to(next(g.parameters()).device), noise="const")
    finally:
        g.train(was_training)
    return [to_uint8(img), colorize(seg_to_classes(seg))]


def sample_grid(g: SemanticGenerator, z: torch.Tensor,
                g_real: SemanticGenerator | None = None) -> np.ndarray:
    """(H, W, 3) uint8 grid: [G_real rows,] then g's image and mask rows, n columns."""
    rows: list[np.ndarray] = []
    if g_real is not None:
        if g_real.config.size != g.config.size:
            raise ValueError(f"G_real makes {g_real.config.size} px, G {g.config.size} px")
        rows += generator_rows(g_real, z)
    rows += generator_rows(g, z)
    tiles = np.concatenate(rows, axis=0)                      # (rows * n, H, W, 3)
    return grid(tiles, ncols=z.shape[0])


__all__ = ["fixed_z", "generator_rows", "sample_grid", "seg_to_classes", "to_uint8"]
