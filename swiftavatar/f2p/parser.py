"""The face parser of F2P's facial-content loss (Shi et al. 2019, section 3.2): a small
fully convolutional network that segments a face into the 13 classes of
swiftavatar.semantics. Its encoder's intermediate feature maps are the representation the
facial-content loss compares (photo against the imitator's render); the segmentation head
is what it is trained for, on the realistic domain's images and masks
(swiftavatar.f2p.parser_train).

Images are (N, 3, S, S) in [-1, 1], like the imitator's output. Pure torch.nn: no Ray, no
files; the device is wherever the caller moves the module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from swiftavatar.config import StageConfig, option
from swiftavatar.semantics import NUM_CLASSES


@dataclass(frozen=True)
class FaceParserConfig(StageConfig):
    """The parser's shape: one encoder stage per entry of `channels` (two 3x3 convolutions,
    the first of stride 2), then a head over all stages' features brought to 1/2 scale."""

    channels: tuple[int, ...] = option((16, 32, 64), help="channels of each encoder stage")
    num_classes: int = NUM_CLASSES

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(len(self.channels) >= 1 and all(int(c) >= 4 for c in self.channels), "channels",
             "must be one or more stages of >= 4 channels")
        need(self.num_classes >= 2, "num_classes", "must be >= 2")
        return out


def encoder_stages(channels: tuple[int, ...]) -> nn.ModuleList:
    """One stage per entry of `channels`: two 3x3 convolutions with batch norm and ReLU, the
    first of stride 2 (RGB in)."""
    stages: list[nn.Module] = []
    c_in = 3
    for c in channels:
        stages.append(nn.Sequential(
            nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
            nn.ReLU(inplace=True)))
        c_in = c
    return nn.ModuleList(stages)


class FaceParser(nn.Module):
    """x (N, 3, S, S) in [-1, 1] -> class logits (N, num_classes, S, S); `features(x)` gives
    the encoder stages' maps (stage k at 1 / 2**(k+1) of S), the facial-content loss's input.
    S must be divisible by 2**len(channels)."""

    def __init__(self, cfg: FaceParserConfig | None = None) -> None:
        super().__init__()
        self.cfg = (cfg or FaceParserConfig()).validate()
        self.stages = encoder_stages(self.cfg.channels)
        total = sum(self.cfg.channels)
        self.head = nn.Sequential(
            nn.Conv2d(total, self.cfg.channels[0] * 2, 3, padding=1, bias=False),
            nn.BatchNorm2d(self.cfg.channels[0] * 2), nn.ReLU(inplace=True),
            nn.Conv2d(self.cfg.channels[0] * 2, self.cfg.num_classes, 1))

    def constructor_args(self) -> dict[str, Any]:
        """Plain values that rebuild this module (parser_from_args)."""
        return {"config": self.cfg.to_dict()}

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        assert x.ndim == 4 and x.shape[1] == 3, tuple(x.shape)
        feats = []
        h = x
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features(x)
        size = feats[0].shape[-2:]
        h = torch.cat([feats[0]] + [F.interpolate(f, size=size, mode="bilinear",
                                                  align_corners=False) for f in feats[1:]], 1)
        logits = F.interpolate(self.head(h), size=x.shape[-2:], mode="bilinear",
                               align_corners=False)
        return logits


def parser_from_args(args: Mapping[str, Any]) -> FaceParser:
    return FaceParser(FaceParserConfig.from_dict(args["config"]))


def images_to_input(images: Any, size: int | None = None) -> torch.Tensor:
    """(N, H, W, 3) uint8 (array or tensor) -> (N, 3, size, size) float in [-1, 1]; a float
    (N, 3, H, W) tensor is taken as already in [-1, 1] and only resized."""
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))
    if x.dtype == torch.uint8:
        assert x.ndim == 4 and x.shape[-1] == 3, tuple(x.shape)
        x = x.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    assert x.ndim == 4 and x.shape[1] == 3, tuple(x.shape)
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x


__all__ = ["FaceParser", "FaceParserConfig", "encoder_stages", "images_to_input",
           "parser_from_args"]
