"""F2P's per-photo optimisation (Shi et al. 2019, section 3.3): gradient descent on an avatar
vector through the imitator, so that the face parser sees the same face in the imitator's
render as in the photo.

The loss of one photo is `content_weight * facial content + identity_weight * identity`:
- facial content: the L1 distance between the parser's encoder features of the photo and of
  the render, over the stages in `content_layers`, each weighted per pixel by how much of the
  photo the parser assigns to the face's components there (`face_weighting`, as F2P weights
  its content loss by the parsing of the photo);
- identity: `1 - cos(identity(photo), identity(render))` for an identity embedding network
  passed in by the caller (swiftavatar.f2p.identity.IdentityNet, or any callable from images
  to embeddings); the default weight is 0, F2P's is 0.01.

It starts from the schema's default vector (F2P starts from the mean parameters), relaxes
the discrete parameters to a softmax over option logits whose temperature is annealed
towards one-hot, optimises the continuous values (through a sigmoid) and the logits with
Adam, and decodes a valid vector (argmax options, values in range). Paper values, as we
recall them (the paper's implementation section was not in the text we could search, so
they are unconfirmed): the identity loss weighted by alpha = 0.01 against the content loss,
50 iterations, a step-wise decaying rate. The paper's rate applies to plain gradient descent
on raw parameters, not to Adam on logits, so `lr` and the decay factor are our own.

Pure torch: no Ray, no files. The device comes from the caller.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
from torch.nn import functional as F

from swiftavatar.config import StageConfig, option
from swiftavatar.engines.schema import EngineSchema, VectorBatch
from swiftavatar.f2p.parser import FaceParser, images_to_input
from swiftavatar.imitator.model import Imitator, RelaxedVector, annealed_temperature
from swiftavatar.semantics import BROWS, EYES, MOUTH, NOSE, SKIN

Identity = Callable[[torch.Tensor], torch.Tensor]      # (N, 3, S, S) in [-1, 1] -> (N, D)
FACE_CLASSES = (SKIN, EYES, BROWS, MOUTH, NOSE)


@dataclass(frozen=True)
class F2PConfig(StageConfig):
    """Per-photo optimisation settings (paper values where the paper states them)."""

    steps: int = option(50, help="gradient steps per photo (F2P: 50 iterations)")
    lr: float = option(0.1, help="Adam learning rate on the relaxed parameters")
    lr_decay: float = option(0.8, help="factor applied to the rate every lr_decay_every steps")
    lr_decay_every: int = option(5, help="steps between rate decays")
    content_weight: float = option(1.0, help="weight of the facial-content loss")
    identity_weight: float = option(0.0, help="weight of the identity loss (F2P: 0.01; needs "
                                              "an identity network)")
    content_layers: tuple[int, ...] = option((0, 1, 2),
                                             help="parser encoder stages the content loss uses")
    face_weighting: bool = option(True, flag="--no-face-weighting",
                                  help="do not weight the content loss by the photo's "
                                       "parsed face components")
    temperature_start: float = option(1.0, help="softmax temperature at the first step")
    temperature_end: float = option(0.05, help="softmax temperature at the last step")
    logit_scale: float = 2.0     # the start vector's option logits (RelaxedVector)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.steps >= 1, "steps", "must be >= 1")
        need(self.lr > 0, "lr", "must be > 0")
        need(0 < self.lr_decay <= 1, "lr_decay", "must be in (0, 1]")
        need(self.lr_decay_every >= 1, "lr_decay_every", "must be >= 1")
        need(self.content_weight >= 0, "content_weight", "must be >= 0")
        need(self.identity_weight >= 0, "identity_weight", "must be >= 0")
        need(self.content_weight + self.identity_weight > 0, "content_weight",
             "and identity_weight must not both be 0")
        need(len(self.content_layers) >= 1 and min(self.content_layers, default=0) >= 0,
             "content_layers", "must name one or more encoder stages (from 0)")
        need(self.temperature_start > 0, "temperature_start", "must be > 0")
        need(self.temperature_end > 0, "temperature_end", "must be > 0")
        return out


def face_weights(parser: FaceParser, photos: torch.Tensor) -> torch.Tensor:
    """(N, 1, S, S): the parser's probability that each pixel of the photo is a face
    component (skin, eyes, brows, mouth, nose), no gradient."""
    with torch.no_grad():
        probs = torch.softmax(parser(photos), 1)
        return probs[:, list(FACE_CLASSES)].sum(1, keepdim=True)


def content_loss(parser: FaceParser, photo_feats: Sequence[torch.Tensor],
                 render: torch.Tensor, layers: Sequence[int],
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) facial-content loss: per stage in `layers`, the (weighted) mean L1 distance
    between the photo's features and the render's, summed over stages."""
    feats = parser.features(render)
    total = render.new_zeros(render.shape[0])
    for k in layers:
        d = (feats[k] - photo_feats[k]).abs().mean(1, keepdim=True)         # (N, 1, h, w)
        if weights is None:
            total = total + d.mean((1, 2, 3))
        else:
            w = F.adaptive_avg_pool2d(weights, d.shape[-2:])
            total = total + (w * d).sum((1, 2, 3)) / w.sum((1, 2, 3)).clamp(min=1e-6)
    return total


def identity_loss(identity: Identity, photos: torch.Tensor, render: torch.Tensor
                  ) -> torch.Tensor:
    """(N,) 1 - cosine similarity of the identity embeddings of photo and render."""
    with torch.no_grad():
        target = identity(photos)
    return 1.0 - F.cosine_similarity(identity(render), target, dim=1)


class PhotoLoss:
    """F2P's loss of renders against fixed photos (N, 3, S, S): the photos' parser features,
    face weights and identity embeddings are computed once; calling it with renders gives
    (total, content, identity), each (N,). The identity term is 0 without a network or
    weight. The caller freezes the networks (no gradient reaches them from here)."""

    def __init__(self, parser: FaceParser, photos: torch.Tensor, cfg: F2PConfig,
                 identity: Identity | None = None) -> None:
        self.parser, self.cfg = parser, cfg
        self.identity = identity if cfg.identity_weight > 0 else None
        with torch.no_grad():
            self.feats = [f.detach() for f in parser.features(photos)]
            self.target = self.identity(photos) if self.identity is not None else None
        self.weights = face_weights(parser, photos) if cfg.face_weighting else None

    def __call__(self, render: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = content_loss(self.parser, self.feats, render, self.cfg.content_layers,
                         self.weights)
        i = (1.0 - F.cosine_similarity(self.identity(render), self.target, dim=1)
             if self.identity is not None else torch.zeros_like(c))
        return self.cfg.content_weight * c + self.cfg.identity_weight * i, c, i


def f2p(imitator: Imitator, parser: FaceParser, photos: Any, schema: EngineSchema,
        config: F2PConfig | None = None, *, identity: Identity | None = None,
        start: VectorBatch | None = None, device: str | torch.device = "cpu",
        **overrides: Any) -> tuple[VectorBatch, dict[str, Any]]:
    """Fit one avatar vector per photo -> (valid VectorBatch, history).

    photos: (N, H, W, 3) uint8 or (N, 3, H, W) float in [-1, 1]. `overrides` replace fields
    of `config` (e.g. steps=20). history: per-step lists "loss", "content", "identity" (means
    over photos), "temperature", "lr"; "decoded_loss" (the mean loss of the decoded, hard
    vector) and "seconds". Each photo's optimisation is independent of the others'."""
    cfg = replace(config or F2PConfig(), **overrides).validate()
    if cfg.identity_weight > 0 and identity is None:
        raise ValueError("identity_weight > 0 needs an identity embedding network "
                         "(identity=...); pass identity_weight=0 to use the content loss only")
    if not imitator.fits(schema):
        raise ValueError(f"the imitator was not built for engine {schema.engine!r}'s schema "
                         f"({schema.fingerprint})")
    if max(cfg.content_layers) >= len(parser.stages):
        raise ValueError(f"content_layers {cfg.content_layers} name stages the parser lacks "
                         f"(it has {len(parser.stages)})")
    t0 = time.perf_counter()
    size = imitator.cfg.image_size
    x = images_to_input(photos, size).to(device)
    n = x.shape[0]
    if start is None:
        d = schema.default_vector()
        start = VectorBatch(schema, d.continuous[None].repeat(n, 0),
                            d.discrete[None].repeat(n, 0))
    relaxed = RelaxedVector(schema, start, logit_scale=cfg.logit_scale).to(device)
    opt = torch.optim.Adam(relaxed.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_decay_every, cfg.lr_decay)
    history: dict[str, Any] = {k: [] for k in ("loss", "content", "identity", "temperature",
                                               "lr")}
    with frozen(imitator, parser, *([identity] if isinstance(identity, torch.nn.Module)
                                     else [])):
        photo_loss = PhotoLoss(parser, x, cfg, identity)

        def losses(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            return photo_loss(imitator(inputs))

        for step in range(cfg.steps):
            t = annealed_temperature(step, cfg.steps, cfg.temperature_start,
                                     cfg.temperature_end)
            loss, c, i = losses(relaxed(t))
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()            # per-photo losses: independent optimisations
            history["lr"].append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            for key, v in (("loss", loss), ("content", c), ("identity", i)):
                history[key].append(float(v.detach().mean()))
            history["temperature"].append(t)
        vectors = relaxed.decode()
        with torch.no_grad():
            hard = torch.as_tensor(vectors.onehot(), dtype=torch.float32, device=device)
            history["decoded_loss"] = float(losses(hard)[0].mean())
    history["seconds"] = time.perf_counter() - t0
    vectors.validate()
    return vectors, history


class frozen:
    """Eval mode and no parameter gradients for the given modules; restored on exit."""

    def __init__(self, *modules: torch.nn.Module) -> None:
        self.modules = modules
        self.saved: list[tuple[bool, list[bool]]] = []

    def __enter__(self) -> None:
        for m in self.modules:
            self.saved.append((m.training, [p.requires_grad for p in m.parameters()]))
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def __exit__(self, *exc: Any) -> None:
        for m, (training, flags) in zip(self.modules, self.saved):
            m.train(training)
            for p, flag in zip(m.parameters(), flags):
                p.requires_grad_(flag)


__all__ = ["F2PConfig", "FACE_CLASSES", "Identity", "PhotoLoss", "content_loss", "f2p",
           "face_weights", "frozen", "identity_loss"]
