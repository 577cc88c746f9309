"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant for mobile CPUs) in pure torch.nn.

Lite differs from EfficientNet-B0: no squeeze-and-excitation, ReLU6 instead of swish, and the
stem (32 channels) and head (1280) are not scaled. Seven stages of inverted-residual (MBConv)
blocks, each (kernel, stride, expansion, output channels, repeats):

    (3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)

Convolutions pad symmetrically (k // 2): with the released weights this classified
scikit-image's sample photos (cat, espresso, rocket) with higher confidence than TensorFlow's
asymmetric "SAME" padding (top-1 probability 0.54 against 0.44 on average). The weights expect
inputs scaled as (x - 127) / 128 per channel (the TensorFlow Lite convention, top-1 0.57).
Parameter names follow the common PyTorch port
(`_conv_stem`, `_bn0`, `_blocks.N._expand_conv / _bn0 / _depthwise_conv / _bn1 /
_project_conv / _bn2`, `_conv_head`, `_bn1`, `_fc`), so its ImageNet state dict loads as is.
Input: (N, 3, H, W) normalised by the caller; `forward` returns the pooled (N, 1280) feature.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM, HEAD = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01     # TensorFlow's batch-norm settings (decay 0.99)
FEATURES = HEAD


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (skipped at expansion 1), depthwise k x k, 1x1 project;
    identity skip when the stride is 1 and the width is kept."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = _conv(c_in, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, c_out, 1)
        self._bn2 = _bn(c_out)
        self.expand = expand
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand != 1:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """The trunk: (N, 3, H, W) normalised images -> (N, 1280) pooled features. With
    `num_classes` the ImageNet classifier `_fc` is kept (`classify` uses it, to check the
    released weights); an estimator trunk has none."""

    def __init__(self, num_classes: int | None = 1000) -> None:
        super().__init__()
        self._conv_stem = _conv(3, STEM, 3, stride=2)
        self._bn0 = _bn(STEM)
        blocks, c = [], STEM
        for kernel, stride, expand, c_out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c, c_out, kernel, stride if i == 0 else 1, expand))
                c = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(c, HEAD, 1)
        self._bn1 = _bn(HEAD)
        self._fc = nn.Linear(HEAD, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, tuple(x.shape)
        x = F.relu6(self._bn0(self._conv_stem(x)))                      # (N, 32, H/2, W/2)
        for block in self._blocks:
            x = block(x)                                                # (N, 320, H/32, W/32)
        x = F.relu6(self._bn1(self._conv_head(x)))                      # (N, 1280, H/32, W/32)
        return x.mean((2, 3))                                           # (N, 1280)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier logits (N, num_classes) (dropout is inactive at inference)."""
        if self._fc is None:
            raise ValueError("this trunk was built without a classifier (num_classes=None)")
        return self._fc(self.forward(x))

    @torch.no_grad()
    def fuse_batchnorm(self) -> None:
        """Fold every BatchNorm (eval statistics) into the convolution before it, in place."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        pairs = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for b in self._blocks:
            pairs += [(b, "_depthwise_conv", "_bn1"), (b, "_project_conv", "_bn2")]
            if b.expand != 1:
                pairs.append((b, "_expand_conv", "_bn0"))
        for owner, conv, bn in pairs:
            if isinstance(getattr(owner, bn), nn.BatchNorm2d):
                setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
                setattr(owner, bn, nn.Identity())


__all__ = ["EfficientNetLite0", "FEATURES", "MBConv", "STAGES"]
