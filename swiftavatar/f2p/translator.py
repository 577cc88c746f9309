"""F2P v2's translator (Shi et al. 2020): a multilayer perceptron from a face's identity
embedding to the avatar vector, trained without labels through the frozen imitator with F2P's
losses (facial content through the face parser, identity through the embedding network; see
swiftavatar.f2p.optimize.PhotoLoss) on unlabelled realistic faces; a new photo then costs one
embedding and one forward pass instead of F2P's per-photo optimisation.

Besides F2P's losses, a loopback term (`loopback_loss`; F2P v2's, as we recall it, weight
`loopback_weight`) asks the translator to recover random vectors from the identity embedding
of their imitator renders, which ties its output to what the embedding can tell apart.

The output is the imitator's relaxed input: continuous values through a sigmoid, one softmax
per discrete parameter whose temperature is annealed over training towards one-hot;
`translate` decodes valid vectors (argmax options, values in range).

Pure torch: no Ray, no files. The device comes from the caller.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from swiftavatar.config import StageConfig, option
from swiftavatar.engines.prior import Prior
from swiftavatar.engines.schema import EngineSchema, VectorBatch
from swiftavatar.f2p.checkpoint import load_module, save_module
from swiftavatar.f2p.optimize import F2PConfig, Identity, PhotoLoss, frozen
from swiftavatar.f2p.parser import FaceParser, images_to_input
from swiftavatar.imitator.model import Imitator, annealed_temperature, decode_relaxed, \
    onehot_inputs, relaxed_inputs

FORMAT = "swiftavatar.f2p_translator.v1"


class TranslatorCheckpointError(ValueError):
    """A path holds no usable translator checkpoint; the message says what is expected."""


@dataclass(frozen=True)
class TranslatorConfig(StageConfig):
    """The MLP's shape: `layers` hidden layers of `hidden` units (ReLU)."""

    hidden: int = option(256, help="units of each hidden layer")
    layers: int = option(2, help="hidden layers")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.hidden >= 4, "hidden", "must be >= 4")
        need(self.layers >= 1, "layers", "must be >= 1")
        return out


class Translator(nn.Module):
    """emb (N, dim) -> (continuous in (0, 1) (N, n_c), one logit row (N, k_j) per discrete
    parameter); `forward(emb, temperature)` gives the imitator's flat relaxed input."""

    def __init__(self, cfg: TranslatorConfig, dim: int, num_continuous: int,
                 num_options: Sequence[int]) -> None:
        super().__init__()
        self.cfg = cfg.validate()
        self.dim, self.num_continuous = int(dim), int(num_continuous)
        self.num_options = tuple(int(k) for k in num_options)
        layers: list[nn.Module] = []
        c_in = self.dim
        for _ in range(cfg.layers):
            layers += [nn.Linear(c_in, cfg.hidden), nn.ReLU(inplace=True)]
            c_in = cfg.hidden
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(c_in, self.num_continuous + sum(self.num_options))

    @classmethod
    def for_schema(cls, cfg: TranslatorConfig, dim: int, schema: EngineSchema) -> "Translator":
        return cls(cfg, dim, schema.n_continuous, schema.num_options)

    def constructor_args(self) -> dict[str, Any]:
        return {"config": self.cfg.to_dict(), "dim": self.dim,
                "num_continuous": self.num_continuous, "num_options": list(self.num_options)}

    def heads(self, emb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.out(self.body(emb))
        cont = torch.sigmoid(h[:, :self.num_continuous])
        logits = list(torch.split(h[:, self.num_continuous:], list(self.num_options), dim=1))
        return cont, logits

    def forward(self, emb: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        cont, logits = self.heads(emb)
        return relaxed_inputs(cont, logits, temperature)


@dataclass(frozen=True)
class TranslatorTrainConfig(StageConfig):
    """One translator run on unlabelled faces; `loss` holds F2P's loss weights and layers
    (its step and rate fields are F2P's and unused here)."""

    model: TranslatorConfig = field(default_factory=TranslatorConfig)
    loss: F2PConfig = field(default_factory=lambda: F2PConfig(identity_weight=0.01))
    epochs: int = option(20, help="epochs over the faces")
    batch: int = option(32, help="batch size")
    lr: float = option(1e-3, help="Adam learning rate")
    loopback_weight: float = option(
        1.0, help="weight of F2P v2's loopback loss: the translator recovers random prior "
                  "vectors from the identity embedding of their imitator renders (0: off)")
    temperature_start: float = option(1.0, help="softmax temperature in the first epoch")
    temperature_end: float = option(0.1, help="softmax temperature in the last epoch")
    seed: int = option(0, help="seed of initialisation and order")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        for name in ("epochs", "batch"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.loopback_weight >= 0, "loopback_weight", "must be >= 0")
        need(self.temperature_start > 0 and self.temperature_end > 0, "temperature_start",
             "and temperature_end must be > 0")
        return (out + [("model", f"{k} {m}") for k, m in self.model.problems()]
                + [("loss", f"{k} {m}") for k, m in self.loss.problems()])


def train_translator(imitator: Imitator, parser: FaceParser, identity: Identity, faces: Any,
                     schema: EngineSchema, cfg: TranslatorTrainConfig | None = None, *,
                     prior: Prior | None = None, device: str | torch.device = "cpu",
                     log: Callable[[str], None] | None = None
                     ) -> tuple[Translator, dict[str, Any]]:
    """Train a translator on unlabelled `faces` ((N, H, W, 3) uint8 or (N, 3, H, W) in
    [-1, 1]) -> (translator in eval mode, {"losses": per-epoch mean loss, "seconds"}). The
    imitator, parser and identity network stay frozen; `identity` also gives the input.
    `prior` draws the loopback term's vectors (None: uniform; an engine's suggested prior
    keeps them like the faces a platform sees)."""
    cfg = (cfg or TranslatorTrainConfig()).validate()
    if not imitator.fits(schema):
        raise ValueError(f"the imitator was not built for engine {schema.engine!r}'s schema "
                         f"({schema.fingerprint})")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    x_all = images_to_input(faces, imitator.cfg.image_size)
    nets = [imitator, parser, *([identity] if isinstance(identity, nn.Module) else [])]
    losses: list[float] = []
    with frozen(*nets):
        with torch.no_grad():
            emb_all = torch.cat([identity(x_all[i:i + 256].to(device)).cpu()
                                 for i in range(0, len(x_all), 256)])
        model = Translator.for_schema(cfg.model, emb_all.shape[1], schema).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        for epoch in range(cfg.epochs):
            t = annealed_temperature(epoch, cfg.epochs, cfg.temperature_start,
                                     cfg.temperature_end)
            order = rng.permutation(len(x_all))
            total, count = 0.0, 0
            for i in range(0, max(len(order) - cfg.batch + 1, 1), cfg.batch):
                idx = torch.as_tensor(order[i:i + cfg.batch])
                x = x_all[idx].to(device)
                loss = PhotoLoss(parser, x, cfg.loss, identity)(
                    imitator(model(emb_all[idx].to(device), t)))[0].mean()
                if cfg.loopback_weight > 0:
                    seed = cfg.seed + 7919 * (epoch + 1)      # fresh vectors every epoch
                    loss = loss + cfg.loopback_weight * loopback_loss(
                        model, imitator, identity, schema.sample(seed, range(i, i + len(idx)), prior),
                        device)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, count = total + float(loss.detach()), count + 1
            losses.append(total / max(count, 1))
            if log is not None:
                log(f"translator epoch {epoch + 1}/{cfg.epochs}: loss {losses[-1]:.4f} "
                    f"(temperature {t:.3f})")
    return model.eval(), {"losses": losses, "seconds": time.perf_counter() - t0}


def loopback_loss(model: Translator, imitator: Imitator, identity: Identity,
                  vectors: VectorBatch, device: str | torch.device) -> torch.Tensor:
    """F2P v2's loopback term (as we recall it): render `vectors` with the imitator, embed the
    renders, and ask the translator for the vectors back: L1 on the continuous values in
    [0, 1] plus the mean cross-entropy of the discrete options. Only the translator learns."""
    cont_true = torch.from_numpy(vectors.normalized_continuous()).float().to(device)  # (B, n_c)
    disc_true = torch.from_numpy(vectors.discrete).long().to(device)                  # (B, n_d)
    with torch.no_grad():
        emb = identity(imitator(onehot_inputs(cont_true, disc_true, model.num_options)))
    cont, logits = model.heads(emb)
    loss = cont.new_zeros(())
    if cont.shape[1]:
        loss = loss + F.l1_loss(cont, cont_true)
    if logits:
        loss = loss + sum(F.cross_entropy(lg, disc_true[:, j])
                          for j, lg in enumerate(logits)) / len(logits)
    return loss


@torch.no_grad()
def translate(translator: Translator, identity: Identity, photos: Any, schema: EngineSchema,
              size: int) -> VectorBatch:
    """One avatar vector per photo: embed (at `size`, the imitator's side) and one forward
    pass, decoded to a valid VectorBatch."""
    device = next(translator.parameters()).device
    x = images_to_input(photos, size).to(device)
    with frozen(translator, *([identity] if isinstance(identity, nn.Module) else [])):
        cont, logits = translator.heads(identity(x))
    vectors = decode_relaxed(schema, cont, logits)
    vectors.validate()
    return vectors


def translator_from_args(args: dict[str, Any]) -> Translator:
    """A Translator from its checkpoint's constructor arguments."""
    return Translator(TranslatorConfig(**args["config"]), args["dim"], args["num_continuous"],
                      args["num_options"])


def save_translator(directory: str | Path, model: Translator, cfg: TranslatorTrainConfig,
                    result: dict[str, Any]) -> Path:
    """Write checkpoint.pt and meta.json into `directory`, each atomically. `result` should
    name the engine schema (`schema`: its JSON) the translator was trained for."""
    return save_module(directory, FORMAT, model, cfg, result)


def load_translator(path: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[Translator, dict[str, Any]]:
    """(translator in eval mode on `device`, the checkpoint's plain values) from a checkpoint
    file or the directory holding it."""
    return load_module(path, FORMAT, "translator", "swiftavatar.f2p.translator.save_translator",
                       TranslatorCheckpointError, translator_from_args, device)


__all__ = ["FORMAT", "Translator", "TranslatorCheckpointError", "TranslatorConfig",
           "TranslatorTrainConfig", "load_translator", "loopback_loss", "save_translator", "train_translator",
           "translate", "translator_from_args"]
