"""Photometric augmentation of the estimator's input and the colour normalisation of a face
crop (not in the paper; both off by default). Pure torch, on the batch.

`photometric_augment` changes what a camera and the light change (white-balance gains,
brightness, contrast, saturation, hue, gamma, blur, noise, JPEG), never geometry, so the
avatar vector a row is paired with stays right. Each row draws from its own generator seeded
by (seed, epoch, the row's content): the same row gets the same change in any batch, on any
worker, and a new one every epoch.

`normalize_colour` (gray-world white balance, then the crop's luminance standardised) removes a
global colour cast and exposure; the model applies it to its input in training and prediction
alike when its config asks for it (`EstimatorConfig.color_norm`).
"""
from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

LUMA = (0.2126, 0.7152, 0.0722)
COLOR_NORMS = ("none", "grayworld")
NORM_STD = 0.2            # luminance std of a normalised crop (mean 0.5), on [0, 1]


def row_seeds(seed: int, epoch: int, images: np.ndarray | torch.Tensor) -> list[int]:
    """One seed per row of (N, H, W, 3) uint8 images, from (seed, epoch, the row's bytes)."""
    arr = np.ascontiguousarray(np.asarray(images.cpu() if isinstance(images, torch.Tensor)
                                          else images))
    return [int(np.random.SeedSequence([int(seed), int(epoch), zlib.crc32(row.tobytes())])
                .generate_state(1)[0]) for row in arr]


def _gauss_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(3, H, W) blurred by a separable Gaussian of `sigma` px (reflect padding)."""
    r = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    y = F.pad(x[None], (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return y[0]


def _hue_rotation(angle: float, device, dtype) -> torch.Tensor:
    """(3, 3) rotation of RGB about the grey axis by `angle` radians (a hue shift)."""
    c, s = math.cos(angle), math.sin(angle)
    a = (1 - c) / 3
    b = math.sqrt(1 / 3) * s
    return torch.tensor([[c + a, a - b, a + b], [a + b, c + a, a - b], [a - b, a + b, c + a]],
                        device=device, dtype=dtype)


def _augment_one(x: torch.Tensor, s: float, gen: torch.Generator) -> torch.Tensor:
    """One image (3, H, W) in [0, 1], strength s > 0. Draws in a fixed order."""
    u = torch.rand(13, generator=gen).tolist()
    v = lambda k, amp: (2 * u[k] - 1) * amp * s  # noqa: E731
    dev, dt = x.device, x.dtype
    gains = torch.exp(torch.tensor([v(0, 0.2), v(1, 0.1), v(2, 0.2)], device=dev, dtype=dt))
    x = x * gains.view(3, 1, 1) * math.exp(v(3, 0.35))             # white balance, brightness
    mean = x.mean()
    x = (x - mean) * math.exp(v(4, 0.3)) + mean                       # contrast
    grey = (x * torch.tensor(LUMA, device=dev, dtype=dt).view(3, 1, 1)).sum(0, keepdim=True)
    x = grey + (x - grey) * math.exp(v(5, 0.5))                       # saturation
    x = torch.einsum("ij,jhw->ihw", _hue_rotation(v(6, 0.25), dev, dt), x)   # hue
    x = x.clamp(0.0, 1.0) ** math.exp(v(7, 0.3))                      # gamma
    if u[8] < 0.4 * min(s, 1.0):
        x = _gauss_blur(x, 0.3 + 1.2 * s * u[9])                      # defocus
    noise = torch.randn(x.shape, generator=gen).to(dev, dt)
    x = (x + noise * 0.04 * s * u[10]).clamp(0.0, 1.0)                # sensor noise
    if u[11] < 0.5 * min(s, 1.0):                                     # JPEG round trip
        from swiftavatar.faces.camera import jpeg_roundtrip

        q = int(round(95 - 70 * min(s, 1.0) * u[12]))
        u8 = (x * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        back = torch.from_numpy(jpeg_roundtrip(u8, q).copy())       # (H, W, 3) uint8
        x = back.permute(2, 0, 1).to(dev, dt) / 255.0
    return x


def photometric_augment(x: torch.Tensor, strength: float, seeds: Sequence[int]) -> torch.Tensor:
    """x (N, 3, S, S) in [-1, 1] -> the same shape and range, each row changed by its own
    seeded draws (`row_seeds`). Strength 0 returns x itself (the identity)."""
    if strength <= 0:
        return x
    if len(seeds) != x.shape[0]:
        raise ValueError(f"{len(seeds)} seeds for {x.shape[0]} images")
    x01 = (x + 1.0) * 0.5
    out = [_augment_one(x01[i], float(strength), torch.Generator().manual_seed(int(sd)))
           for i, sd in enumerate(seeds)]
    return (torch.stack(out) * 2.0 - 1.0).clamp(-1.0, 1.0)


def normalize_colour(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """x (N, 3, H, W) on [0, 1] -> gray-world white balanced (every channel's mean made the
    mean of the three), then the luminance standardised to mean 0.5 and std NORM_STD per crop.
    Invariant to per-channel gains (a colour cast, exposure) up to clipping."""
    m = x.mean(dim=(2, 3), keepdim=True) + eps                     # (N, 3, 1, 1)
    x = x * (m.mean(dim=1, keepdim=True) / m)                      # gray world
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    lum = (x * w).sum(dim=1, keepdim=True)                         # (N, 1, H, W)
    mu = lum.mean(dim=(2, 3), keepdim=True)
    sd = lum.std(dim=(2, 3), keepdim=True) + eps
    return (x - mu) / sd * NORM_STD + 0.5


__all__ = ["COLOR_NORMS", "normalize_colour", "photometric_augment", "row_seeds"]
