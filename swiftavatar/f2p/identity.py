"""The identity embedding of F2P's identity loss (Shi et al. 2019, section 3.2, where a
face-recognition network plays this part): a small convolutional network that maps a face to
a unit-norm embedding, so that two faces of one person have a high cosine similarity and two
people a low one. Trained on the realistic domain's identities under varied pose, light and
camera (swiftavatar.f2p.identity_train).

Images are (N, 3, S, S) in [-1, 1], like the imitator's output, at any S: the network brings
them to the size it was trained at first (bilinear, differentiable). Pure torch.nn: no Ray,
no files; the device is wherever the caller moves the module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from swiftavatar.config import StageConfig, option
from swiftavatar.f2p.parser import encoder_stages


@dataclass(frozen=True)
class IdentityNetConfig(StageConfig):
    """The embedding network's shape: the face parser's kind of encoder stages, global
    average pooling, a linear map to `dim`, normalised to unit length."""

    channels: tuple[int, ...] = option((16, 32, 64, 128),
                                       help="channels of each encoder stage")
    dim: int = option(64, help="embedding size")
    size: int = 32              # input side the network works at (set by the training run)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(len(self.channels) >= 1 and all(int(c) >= 4 for c in self.channels), "channels",
             "must be one or more stages of >= 4 channels")
        need(self.dim >= 2, "dim", "must be >= 2")
        need(self.size >= 16, "size", "must be >= 16")
        return out


class IdentityNet(nn.Module):
    """x (N, 3, S, S) in [-1, 1] -> (N, dim) unit-norm identity embeddings."""

    def __init__(self, cfg: IdentityNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = (cfg or IdentityNetConfig()).validate()
        self.stages = encoder_stages(self.cfg.channels)
        self.head = nn.Linear(self.cfg.channels[-1], self.cfg.dim)

    def constructor_args(self) -> dict[str, Any]:
        """Plain values that rebuild this module (identity_from_args)."""
        return {"config": self.cfg.to_dict()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, tuple(x.shape)
        if x.shape[-1] != self.cfg.size or x.shape[-2] != self.cfg.size:
            x = F.interpolate(x, size=(self.cfg.size, self.cfg.size), mode="bilinear",
                              align_corners=False, antialias=x.shape[-1] > self.cfg.size)
        h = x
        for stage in self.stages:
            h = stage(h)
        return F.normalize(self.head(h.mean((2, 3))), dim=1)


def identity_from_args(args: Mapping[str, Any]) -> IdentityNet:
    return IdentityNet(IdentityNetConfig.from_dict(args["config"]))


__all__ = ["IdentityNet", "IdentityNetConfig", "identity_from_args"]
