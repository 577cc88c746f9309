"""Pure-PyTorch building blocks of StyleGAN2 / SemanticStyleGAN (no compiled ops).

Equalised learning rate: weights are stored N(0, 1) (divided by the lr multiplier) and scaled at
run time, so a checkpoint stored with that convention loads unchanged. `upfirdn2d` (upsample,
FIR filter, downsample) is written with `F.pad` + depthwise `F.conv2d`, which is what a CPU needs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)
BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)


def make_blur_kernel(taps: tuple[float, ...] = BLUR_TAPS) -> torch.Tensor:
    """Separable FIR taps (k,) -> normalised 2-D kernel (k, k) summing to 1."""
    t = torch.tensor(taps, dtype=torch.float32)
    k = t[:, None] * t[None, :]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-insert upsample by `up`, pad (pad0 before, pad1 after, both axes), filter, subsample.

    x (N, C, H, W), kernel (kh, kw) -> (N, C, (H*up + pad0 + pad1 - kh) // down + 1, ...).
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))            # zeros after each sample
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (p0, p1, p0, p1))                            # negative pads crop
    kh, kw = kernel.shape
    weight = kernel.flip([0, 1]).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv2d(x, weight, stride=down, groups=c)


class Blur(nn.Module):
    """FIR low-pass with fixed padding; `gain` (factor**2 after a stride-2 transpose conv)."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", make_blur_kernel() * gain, persistent=False)  # (4, 4)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample2x(nn.Module):
    """x (N, C, H, W) -> (N, C, 2H, 2W): zero insertion then the blur filter (x4 gain)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", make_blur_kernel() * 4.0, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=2, pad=(2, 1))


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None,
                     slope: float = 0.2, gain: float = SQRT2) -> torch.Tensor:
    """leaky_relu(x + bias) * sqrt(2); bias (C,) broadcast over dim 1."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, slope) * gain


class PixelNorm(nn.Module):
    """Normalise each vector to unit RMS over dim 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; optional fused leaky ReLU."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)     # (out, in)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class FourierEmbedding(nn.Module):
    """Coordinates (N, 2, H, W) -> [c, sin(2^i c), cos(2^i c) for i < n_freqs] -> 1x1 projection.

    Channel order per frequency: sin of both coordinates, then cos of both (matches the
    official SemanticStyleGAN layout, so its weights load unchanged).
    """

    def __init__(self, out_channels: int, n_freqs: int, in_channels: int = 2):
        super().__init__()
        self.n_freqs = n_freqs
        self.in_features = in_channels * (2 * n_freqs + 1)
        self.weight = nn.Parameter(torch.randn(out_channels, self.in_features))  # (C, in)
        self.scale = 1.0 / math.sqrt(self.in_features)

    def features(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2, P) -> (..., in_features, P)."""
        parts = [coords]
        for i in range(self.n_freqs):
            f = 2.0 ** i
            parts += [torch.sin(f * coords), torch.cos(f * coords)]
        return torch.cat(parts, dim=-2)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """coords (2, P) -> embedding (C, P)."""
        assert coords.ndim == 2 and coords.shape[0] == 2, coords.shape
        return (self.weight * self.scale) @ self.features(coords)


def grid_coords(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(2, size*size) coordinates in [-1, 1]: row 0 is x (varies along width), row 1 is y."""
    lin = torch.linspace(-1.0, 1.0, size, device=device)
    y, x = torch.meshgrid(lin, lin, indexing="ij")                      # (G, G) each
    return torch.stack([x.reshape(-1), y.reshape(-1)])                   # (2, G*G)


class StaticModConv2d(nn.Module):
    """A modulated conv whose modulation is a learned per-input-channel vector, not a style.

    Optional stride-2 transpose upsampling (+ blur), demodulation, noise injection, fused
    leaky ReLU. Used by the render net (which takes no style input) and the output heads.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, upsample: bool = False,
                 demodulate: bool = True, noise: bool = True, activate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))  # (O, I, k, k)
        self.modulation = nn.Parameter(torch.ones(in_ch))                       # (I,)
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.upsample, self.demodulate, self.padding = upsample, demodulate, kernel // 2
        if upsample:  # transpose conv gives 2H + k - 2; the blur trims it back to 2H
            p = (len(BLUR_TAPS) - 2) - (kernel - 1)
            self.blur = Blur(pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
        self.noise_weight = nn.Parameter(torch.zeros(1)) if noise else None
        self.act_bias = nn.Parameter(torch.zeros(out_ch)) if activate else None

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, I, H, W) -> (N, O, H', W'); noise (N or 1, 1, H', W') or None for none."""
        w = self.weight * (self.scale * self.modulation.reshape(1, -1, 1, 1))
        if self.demodulate:
            w = w * torch.rsqrt(w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if self.upsample:
            x = self.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2))
        else:
            x = F.conv2d(x, w, padding=self.padding)
        if self.noise_weight is not None and noise is not None:
            x = x + self.noise_weight * noise
        if self.act_bias is not None:
            x = fused_leaky_relu(x, self.act_bias)
        return x


class ToImage(nn.Module):
    """1x1 head (no demodulation) plus the 2x-upsampled skip from the previous scale."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = StaticModConv2d(in_ch, out_ch, 1, demodulate=False, noise=False,
                                    activate=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.up = Upsample2x()

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        """x (N, I, H, W), skip (N, O, H/2, W/2) or None -> (N, O, H, W)."""
        out = self.conv(x) + self.bias.reshape(1, -1, 1, 1)
        return out if skip is None else out + self.up(skip)


class ConvLayer(nn.Module):
    """Discriminator conv: optional blur + stride-2 downsample, equalised conv, leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True):
        super().__init__()
        if downsample:
            p = (len(BLUR_TAPS) - 2) + (kernel - 1)
            self.blur = Blur(pad=((p + 1) // 2, p // 2))
        else:
            self.blur = None
        self.conv = EqualConv2d(in_ch, out_ch, kernel, stride=2 if downsample else 1,
                                padding=0 if downsample else kernel // 2,
                                bias=bias and not activate)
        self.act_bias = nn.Parameter(torch.zeros(out_ch)) if (activate and bias) else None
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur is not None:
            x = self.blur(x)
        x = self.conv(x)
        return fused_leaky_relu(x, self.act_bias) if self.activate else x


class ResBlock(nn.Module):
    """(N, I, H, W) -> (N, O, H/2, W/2): two 3x3 convs + a 1x1 skip, summed / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2
