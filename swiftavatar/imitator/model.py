"""The imitator (F2P, Shi et al. 2019, section 3.1): a generator that maps an avatar vector to
the image the engine renders for it, so that gradients can flow from an image loss back into
the vector. As in the paper it is a DCGAN-style generator (a stack of stride-2 transposed
convolutions with batch norm and ReLU, from a small feature map up to the output size, tanh
at the end), trained on engine renders with an L1 loss (swiftavatar.imitator.losses).

Input layout: the schema's flat learning vector (`EngineSchema.onehot_dim` wide): the
continuous parameters normalised to [0, 1], then one block per discrete parameter holding a
one-hot row (training) or a probability row (a softmax over option logits while a vector is
optimised, annealed towards one-hot). `RelaxedVector` holds such a vector as free parameters;
`decode_relaxed` turns relaxed inputs back into a valid `VectorBatch`.

Pure torch.nn: no Ray, no files. The device is wherever the caller moves the module.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from swiftavatar.config import StageConfig, option
from swiftavatar.engines.schema import EngineSchema, VectorBatch

NORMS = ("batch", "none")


@dataclass(frozen=True)
class ImitatorConfig(StageConfig):
    """The imitator's shape. The generator starts from a 4 x 4 map of `channels` channels and
    halves the channels (down to `min_channels`) at each doubling up to `image_size`."""

    image_size: int = option(64, help="output side in px (a power of two, >= 8)")
    channels: int = option(256, help="channels of the first 4 x 4 feature map")
    min_channels: int = 32
    norm: str = "batch"          # "batch" (DCGAN, as F2P) or "none"

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        s = self.image_size
        need(s >= 8 and s & (s - 1) == 0, "image_size", "must be a power of two >= 8")
        need(self.channels >= 8, "channels", "must be >= 8")
        need(1 <= self.min_channels <= self.channels, "min_channels",
             "must be in 1..channels")
        need(self.norm in NORMS, "norm", f"must be one of {NORMS}")
        return out


class Imitator(nn.Module):
    """x (N, input_dim) flat learning vectors -> (N, 3, S, S) images in [-1, 1]."""

    def __init__(self, cfg: ImitatorConfig, num_continuous: int,
                 num_options: Sequence[int]) -> None:
        super().__init__()
        self.cfg = cfg.validate()
        self.num_continuous = int(num_continuous)
        self.num_options = tuple(int(k) for k in num_options)
        self.input_dim = self.num_continuous + sum(self.num_options)
        assert self.input_dim > 0, "an imitator needs at least one parameter"
        c0 = cfg.channels
        self.stem = nn.Linear(self.input_dim, c0 * 16)
        self.stem_act = nn.Sequential(_norm(cfg.norm, c0), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        c = c0
        for _ in range(int(math.log2(cfg.image_size)) - 2):     # 4 -> image_size
            c_out = max(c // 2, cfg.min_channels)
            blocks += [nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1,
                                          bias=cfg.norm == "none"),
                       _norm(cfg.norm, c_out), nn.ReLU(inplace=True)]
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(c, 3, 3, padding=1)

    @classmethod
    def for_schema(cls, cfg: ImitatorConfig, schema: EngineSchema) -> "Imitator":
        return cls(cfg, schema.n_continuous, schema.num_options)

    def constructor_args(self) -> dict[str, Any]:
        """Plain values that rebuild this module (imitator_from_args)."""
        return {"config": self.cfg.to_dict(), "num_continuous": self.num_continuous,
                "num_options": list(self.num_options)}

    def fits(self, schema: EngineSchema) -> bool:
        return (schema.n_continuous, schema.num_options) == (self.num_continuous,
                                                             self.num_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 2 and x.shape[1] == self.input_dim, (tuple(x.shape), self.input_dim)
        n = x.shape[0]
        h = self.stem_act(self.stem(x).view(n, self.cfg.channels, 4, 4))   # (N, C, 4, 4)
        img = torch.tanh(self.to_rgb(self.blocks(h)))                      # (N, 3, S, S)
        assert img.shape == (n, 3, self.cfg.image_size, self.cfg.image_size), img.shape
        return img


def imitator_from_args(args: Mapping[str, Any]) -> Imitator:
    return Imitator(ImitatorConfig.from_dict(args["config"]), int(args["num_continuous"]),
                    tuple(args["num_options"]))


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


# ---- inputs: exact (training) and relaxed (optimisation) ---------------------------------
def onehot_inputs(cont01: torch.Tensor, disc: torch.Tensor,
                  num_options: Sequence[int]) -> torch.Tensor:
    """cont01 (N, n_c) in [0, 1], disc (N, n_d) option indices -> (N, n_c + sum(options))."""
    n = cont01.shape[0]
    assert cont01.ndim == 2 and disc.shape == (n, len(num_options)), (cont01.shape, disc.shape)
    parts = [cont01.float()]
    parts += [nn.functional.one_hot(disc[:, j].long(), k).to(cont01.dtype)
              for j, k in enumerate(num_options)]
    return torch.cat(parts, dim=1)


def relaxed_inputs(cont01: torch.Tensor, logits: Sequence[torch.Tensor],
                   temperature: float = 1.0) -> torch.Tensor:
    """cont01 (N, n_c) in [0, 1] and one (N, k_j) logit tensor per discrete parameter -> the
    flat input with softmax(logits / temperature) per block (one-hot as temperature -> 0)."""
    assert temperature > 0, temperature
    n = cont01.shape[0]
    assert all(lg.ndim == 2 and lg.shape[0] == n for lg in logits), [lg.shape for lg in logits]
    return torch.cat([cont01, *[torch.softmax(lg / temperature, dim=1) for lg in logits]],
                     dim=1)


def annealed_temperature(step: int, steps: int, start: float = 1.0,
                         end: float = 0.05) -> float:
    """Geometric schedule from `start` (step 0) to `end` (the last step)."""
    assert start > 0 and end > 0 and steps >= 1
    t = min(max(step, 0), steps - 1) / max(steps - 1, 1)
    return float(start * (end / start) ** t)


def decode_relaxed(schema: EngineSchema, cont01: torch.Tensor,
                   blocks: Sequence[torch.Tensor]) -> VectorBatch:
    """Relaxed inputs -> a valid VectorBatch: continuous values clamped into range, the argmax
    option of each discrete block (logits or probabilities, (N, k_j) each)."""
    c = cont01.detach().float().cpu().numpy()
    n = c.shape[0]
    assert c.shape == (n, schema.n_continuous), c.shape
    assert len(blocks) == schema.n_discrete, (len(blocks), schema.n_discrete)
    disc = (np.stack([b.detach().argmax(1).cpu().numpy() for b in blocks], axis=1)
            if blocks else np.zeros((n, 0), np.int64))
    return VectorBatch.from_normalized(schema, np.nan_to_num(c, nan=0.5), disc)


class RelaxedVector(nn.Module):
    """N avatar vectors as free parameters for gradient descent through an imitator:
    continuous values as sigmoid(u) (always in (0, 1), never stuck at a bound) and one logit
    row per discrete parameter. `forward(temperature)` gives the imitator's flat input;
    `decode()` the valid VectorBatch (argmax options, values in range)."""

    def __init__(self, schema: EngineSchema, start: VectorBatch, *, logit_scale: float = 2.0,
                 eps: float = 0.02) -> None:
        super().__init__()
        assert start.schema.fingerprint == schema.fingerprint
        self.schema = schema
        c = np.clip(start.normalized_continuous(), eps, 1 - eps)
        self.u = nn.Parameter(torch.from_numpy(np.log(c / (1 - c))).float())   # (N, n_c)
        self.logits = nn.ParameterList(
            nn.Parameter(logit_scale * torch.from_numpy(_onehot(start.discrete[:, j], k)))
            for j, k in enumerate(schema.num_options))                         # (N, k_j)

    def continuous01(self) -> torch.Tensor:
        return torch.sigmoid(self.u)

    def forward(self, temperature: float = 1.0) -> torch.Tensor:
        return relaxed_inputs(self.continuous01(), list(self.logits), temperature)

    def decode(self) -> VectorBatch:
        return decode_relaxed(self.schema, self.continuous01(), list(self.logits))


def _onehot(idx: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(idx), k), np.float32)
    out[np.arange(len(idx)), idx] = 1.0
    return out


__all__ = ["Imitator", "ImitatorConfig", "NORMS", "RelaxedVector", "annealed_temperature",
           "decode_relaxed", "imitator_from_args", "onehot_inputs", "relaxed_inputs"]
