"""StyleGAN2 residual discriminator with SemanticStyleGAN's image + segmentation branches.

Two branches of the same shape (1x1 from-input conv, residual blocks down to 4x4) read the
image and the segmentation map; their 4x4 features are summed, then minibatch standard
deviation, a 3x3 conv and two linear layers give one logit per sample. `seg=False` builds the
image branch only (domain adaptation, paper section 3.1, where the avatar data have no masks).
Segmentation input follows the official convention: real masks as one_hot * 2 - 1, fakes as the
generator's seg output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from swiftavatar.models.generator import official_width
from swiftavatar.models.layers import ConvLayer, EqualLinear, ResBlock
from swiftavatar.semantics import NUM_CLASSES


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Defaults are the official 512-px DualBranchDiscriminator."""

    size: int = 512
    num_classes: int = NUM_CLASSES       # seg branch input channels
    seg: bool = True                     # False: image branch only
    channels: tuple[int, ...] | None = None  # widths at size, size/2, ..., 4; None: official
    channel_multiplier: int = 2
    stddev_group: int = 4
    stddev_feat: int = 1

    def __post_init__(self) -> None:
        if self.size < 8 or self.size & (self.size - 1):
            raise ValueError(f"DiscriminatorConfig.size={self.size} must be a power of 2 >= 8")
        if self.channels is not None and len(self.channels) != len(self.resolutions):
            raise ValueError(f"channels needs {len(self.resolutions)} widths for resolutions "
                             f"{self.resolutions}, got {len(self.channels)}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(2 ** i for i in range(int(math.log2(self.size)), 1, -1))

    def width(self, res: int) -> int:
        if self.channels is not None:
            return self.channels[self.resolutions.index(res)]
        return official_width(res, self.channel_multiplier)

    @classmethod
    def embedded(cls, **overrides) -> "DiscriminatorConfig":
        """A small CPU config for 64-px images."""
        return replace(cls(size=64, channels=(32, 64, 128, 128, 128)), **overrides)


class _Branch(nn.Sequential):
    """(N, in_ch, S, S) -> (N, width(4), 4, 4)."""

    def __init__(self, cfg: DiscriminatorConfig, in_ch: int):
        layers = [ConvLayer(in_ch, cfg.width(cfg.size), 1)]
        for res in cfg.resolutions[:-1]:
            layers.append(ResBlock(cfg.width(res), cfg.width(res // 2)))
        super().__init__(*layers)


class Discriminator(nn.Module):
    """D(image[, seg]) -> logits (N, 1)."""

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = cfg = config or DiscriminatorConfig()
        self.image_branch = _Branch(cfg, 3)
        self.seg_branch = _Branch(cfg, cfg.num_classes) if cfg.seg else None
        c4 = cfg.width(4)
        self.final_conv = ConvLayer(c4 + cfg.stddev_feat, c4, 3)
        self.final_linear = nn.Sequential(EqualLinear(c4 * 16, c4, activate=True),
                                          EqualLinear(c4, 1))

    def minibatch_stddev(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C + stddev_feat, H, W): std over groups of samples.

        The group is the largest divisor of N not above stddev_group (the official code needs
        N divisible by min(N, 4)).
        """
        n, c, h, w = x.shape
        f = self.config.stddev_feat
        g = max(d for d in range(1, min(n, self.config.stddev_group) + 1) if n % d == 0)
        y = x.reshape(g, n // g, f, c // f, h, w)
        y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8)          # (N/g, f, C/f, H, W)
        y = y.mean(dim=(2, 3, 4))                                      # (N/g, f)
        y = y.reshape(n // g, f, 1, 1).repeat(g, 1, h, w)              # (N, f, H, W)
        return torch.cat([x, y], dim=1)

    def forward(self, image: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        n = image.shape[0]
        if image.shape[1:] != (3, cfg.size, cfg.size):
            raise ValueError(f"image must be (N, 3, {cfg.size}, {cfg.size}), "
                             f"got {tuple(image.shape)}")
        out = self.image_branch(image)                                 # (N, C4, 4, 4)
        if self.seg_branch is not None:
            if seg is None:
                raise ValueError("this discriminator has a seg branch: pass seg, or build it "
                                 "with DiscriminatorConfig(seg=False) for image-only training")
            if seg.shape != (n, cfg.num_classes, cfg.size, cfg.size):
                raise ValueError(f"seg must be (N, {cfg.num_classes}, {cfg.size}, {cfg.size}), "
                                 f"got {tuple(seg.shape)}")
            out = out + self.seg_branch(seg)
        elif seg is not None:
            raise ValueError("image-only discriminator (seg=False) got a seg input")
        out = self.final_conv(self.minibatch_stddev(out))              # (N, C4, 4, 4)
        logits = self.final_linear(out.reshape(n, -1))
        assert logits.shape == (n, 1), logits.shape
        return logits
