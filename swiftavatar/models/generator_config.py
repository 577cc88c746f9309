"""The SemanticStyleGAN generator's configuration and output (paper section 3.1), apart from the
modules (swiftavatar.models.generator) so a config can be read and checked on its own. The
latent layout is described in swiftavatar.models.generator."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch

from swiftavatar.semantics import EARRING, EYEGLASSES, NUM_CLASSES

# Official render-net width per output resolution (times channel_multiplier from 64 px up).
_OFFICIAL_WIDTH = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32,
                   1024: 16}
NOISE_MODES = ("random", "const", "none")


def official_width(res: int, channel_multiplier: int = 2) -> int:
    """Width SemanticStyleGAN / StyleGAN2 gives a layer at resolution `res`."""
    return _OFFICIAL_WIDTH[res] * (channel_multiplier if res >= 64 else 1)


@dataclass(frozen=True)
class GeneratorConfig:
    """Defaults: the released 512-px CelebAMask-HQ SemanticStyleGAN (official arg names in [])."""

    size: int = 512                     # output resolution [size]
    grid: int = 64                      # local generators' grid / coarse mask size [coarse_size]
    min_feat_size: int = 16             # first render-net resolution [min_feat_size]
    style_dim: int = 512                # [latent]
    n_mlp: int = 8                      # mapping layers [n_mlp]
    lr_mlp: float = 0.01                # mapping lr multiplier
    num_classes: int = NUM_CLASSES      # K local generators [seg_dim]
    local_channels: int = 64            # [local_channel]
    local_layers: int = 10              # [local_layers]
    base_layers: int = 2                # [base_layers]
    depth_layers: int = 6               # depth read after this many layers [depth_layers]
    feature_channels: int = 512         # part / fused feature width [coarse_channel]
    render_channels: tuple[int, ...] | None = None  # per render stage; None: official widths
    channel_multiplier: int = 2         # [channel_multiplier]
    pos_freqs: int | None = None        # Fourier frequencies; None: log2(size) as official
    residual_refine: bool = True        # add the coarse mask to the seg head [residual_refine]
    transparent_classes: tuple[int, ...] = (EYEGLASSES, EARRING)  # [transparent_dims]
    detach_texture: bool = False        # [detach_texture]

    def __post_init__(self) -> None:
        for name in ("size", "grid", "min_feat_size"):
            v = getattr(self, name)
            if v < 1 or v & (v - 1):
                raise ValueError(f"GeneratorConfig.{name}={v} must be a power of 2")
        if not self.min_feat_size < self.grid < self.size:
            raise ValueError(f"need min_feat_size < grid < size, got {self.min_feat_size}, "
                             f"{self.grid}, {self.size}")
        if not 1 <= self.depth_layers <= self.local_layers or self.base_layers > self.depth_layers:
            raise ValueError("need base_layers <= depth_layers <= local_layers, depth_layers >= 1;"
                             f" got {self.base_layers}, {self.depth_layers}, {self.local_layers}")
        if self.num_classes < 2:
            raise ValueError("num_classes must be >= 2 (background plus at least one part)")
        if any(not 0 < c < self.num_classes for c in self.transparent_classes):
            raise ValueError(f"transparent_classes {self.transparent_classes} must lie in "
                             f"1..{self.num_classes - 1}")
        if self.render_channels is not None and len(self.render_channels) != self.n_stages:
            raise ValueError(f"render_channels needs {self.n_stages} widths (one per stage "
                             f"{self.stage_sizes}), got {len(self.render_channels)}")

    @property
    def n_latent(self) -> int:
        """Rows of a W+ code: base codes then (shape, texture) per class."""
        return self.base_layers + 2 * self.num_classes

    @property
    def n_stages(self) -> int:
        return int(math.log2(self.size // self.min_feat_size))

    @property
    def stage_sizes(self) -> tuple[int, ...]:
        """Output resolution of each render stage."""
        return tuple(self.min_feat_size * 2 ** (i + 1) for i in range(self.n_stages))

    @property
    def render_widths(self) -> tuple[int, ...]:
        if self.render_channels is not None:
            return tuple(self.render_channels)
        return tuple(official_width(s, self.channel_multiplier) for s in self.stage_sizes)

    @property
    def n_freqs(self) -> int:
        return self.pos_freqs if self.pos_freqs is not None else int(math.log2(self.size))

    @classmethod
    def embedded(cls, **overrides) -> "GeneratorConfig":
        """A small CPU config: 64 px output, 16x16 grid, 256-d styles, slim render net."""
        base = cls(size=64, grid=16, min_feat_size=8, style_dim=256, feature_channels=64,
                   render_channels=(128, 64, 32))
        return replace(base, **overrides)


class GeneratorOutput(NamedTuple):
    image: torch.Tensor        # (N, 3, H, W), about [-1, 1]
    seg: torch.Tensor          # (N, K, H, W), argmax = class
    mask_coarse: torch.Tensor  # (N, K, G, G) softmax of the depths, sums to 1 over K
    depths: torch.Tensor       # (N, K, G, G) pseudo-depths (background 0)
    feature: torch.Tensor      # (N, F, G, G) fused feature the render net reads
    latents: torch.Tensor      # (N, K, L, D) expanded codes actually used


__all__ = ["GeneratorConfig", "GeneratorOutput", "NOISE_MODES", "official_width"]
