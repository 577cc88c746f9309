"""Training the identity embedding (swiftavatar.f2p.identity) like a face-recognition network,
on what the realistic domain provides: procedural face i of a seed is one person (skin, hair,
face shape and features, glasses, clothes, background are drawn first from the face's own
random stream), and rendering it under another FaceDomainConfig with the same attribute
frequencies changes only its pose, light and camera. `view_configs` makes such views; the
loop trains a cosine-softmax classifier over the training identities (NormFace: scaled
cosine logits against one learnt unit vector per identity, cross-entropy) in plain torch,
and the report is face verification on identities the loop never saw (the ids after the
training ids): every same-identity pair of views against as many different-identity pairs,
accuracy at the best cosine threshold, ROC AUC, and the mean cosine of each kind.

Checkpoints: swiftavatar.f2p.checkpoint (format swiftavatar.identity_net.v1).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from swiftavatar.config import StageConfig, option
from swiftavatar.f2p.checkpoint import load_module, save_module
from swiftavatar.f2p.identity import IdentityNet, IdentityNetConfig, identity_from_args
from swiftavatar.f2p.parser import images_to_input
from swiftavatar.f2p.train_loop import fit, flipped

FORMAT = "swiftavatar.identity_net.v1"

# pose, light and camera ranges the views' windows are drawn inside (FaceDomainConfig fields)
VIEW_BOUNDS: dict[str, tuple[float, float]] = {
    "yaw_deg": (-24.0, 24.0), "roll_deg": (-12.0, 12.0), "scale": (0.9, 1.1),
    "shift": (-0.04, 0.04), "light_azimuth_deg": (-80.0, 80.0),
    "light_elevation_deg": (-20.0, 70.0), "light_kelvin": (2600.0, 9000.0),
    "light_intensity": (0.7, 1.4), "ambient": (0.15, 0.6), "exposure": (0.7, 1.4),
    "blur_sigma": (0.0, 0.01), "noise_std": (0.003, 0.05)}


class IdentityCheckpointError(ValueError):
    """A path holds no usable identity network checkpoint; the message says what is expected."""


@dataclass(frozen=True)
class IdentityTrainConfig(StageConfig):
    """One run: identities `0 .. identities-1` of `face_seed`, each rendered in `views` views;
    the held-out report on the next `val_identities`, in the same views."""

    model: IdentityNetConfig = field(default_factory=IdentityNetConfig)
    size: int = option(32, help="face side in px")
    identities: int = option(512, help="training identities (procedural faces)")
    views: int = option(4, help="renders of each identity (pose, light, camera)")
    val_identities: int = option(128, help="held-out identities for the verification report")
    face_seed: int = option(0, help="seed of the procedural face domain")
    view_seed: int = option(0, help="seed of the views' pose, light and camera windows")
    epochs: int = option(12, help="epochs")
    batch: int = option(64, help="batch size")
    lr: float = option(3e-3, help="Adam learning rate (cosine-decayed to 5%)")
    scale: float = option(16.0, help="scale of the cosine logits (NormFace's s)")
    seed: int = option(0, help="seed of initialisation, order and flips")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.size >= 16, "size", "must be >= 16")
        need(self.identities >= 2, "identities", "must be >= 2")
        need(self.views >= 2, "views", "must be >= 2")
        need(self.val_identities >= 2, "val_identities", "must be >= 2")
        for name in ("epochs", "batch"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.scale > 0, "scale", "must be > 0")
        return out + [("model", f"{k} {m}") for k, m in self.model.problems()]


def view_configs(views: int, view_seed: int = 0, size: int = 32) -> list[Any]:
    """`views` FaceDomainConfigs with the default attribute frequencies (so face i of a seed
    is the same person in each) and, per pose/light/camera range, a window of a third of
    VIEW_BOUNDS at a random place: the same face lands at another pose and light in each."""
    from swiftavatar.faces.config import FaceDomainConfig

    rng = np.random.default_rng([int(view_seed), 17])
    out = []
    for _ in range(views):
        ranges = {}
        for name, (lo, hi) in VIEW_BOUNDS.items():
            width = (hi - lo) / 3
            a = lo + float(rng.uniform(0, hi - lo - width))
            ranges[name] = (a, a + width)
        q = int(rng.integers(25, 80))
        out.append(FaceDomainConfig(size=size, jpeg_quality=(q, q + 15), **ranges))
    return out


def render_views(cfg: IdentityTrainConfig, split: str) -> np.ndarray:
    """(identities, views, S, S, 3) uint8: the "train" or "val" identities in every view."""
    from swiftavatar.faces.procedural import face_images

    ids = (list(range(cfg.identities)) if split == "train"
           else list(range(cfg.identities, cfg.identities + cfg.val_identities)))
    per_view = [face_images(cfg.face_seed, ids, cfg.size, config=c)[0]
                for c in view_configs(cfg.views, cfg.view_seed, cfg.size)]
    return np.stack(per_view, 1)


def train_identity(cfg: IdentityTrainConfig, *, device: str | torch.device = "cpu",
                   data: np.ndarray | None = None, val: np.ndarray | None = None,
                   log: Callable[[str], None] | None = None
                   ) -> tuple[IdentityNet, dict[str, Any]]:
    """Train an identity network -> (network in eval mode, {"losses": per-epoch mean loss,
    "report": held-out verification, "seconds"}). `data` / `val` replace the rendered views
    ((identities, views, S, S, 3) uint8; tests)."""
    cfg.validate()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    views = data if data is not None else render_views(cfg, "train")
    n_id, n_view = views.shape[:2]
    x_all = images_to_input(views.reshape(-1, *views.shape[2:]), cfg.size)
    y_all = torch.arange(n_id).repeat_interleave(n_view)
    model = IdentityNet(replace(cfg.model, size=cfg.size)).to(device).train()
    centres = torch.nn.Parameter(torch.randn(n_id, cfg.model.dim, device=device) * 0.1)

    def batch_loss(idx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        logits = cfg.scale * model(flipped(x_all[idx], flip).to(device)) \
            @ F.normalize(centres, dim=1).T
        return F.cross_entropy(logits, y_all[idx].to(device))

    losses = fit([*model.parameters(), centres], len(x_all), batch_loss, epochs=cfg.epochs,
                 batch=cfg.batch, lr=cfg.lr, rng=rng, log=log, name="identity")
    model.eval()
    seconds = time.perf_counter() - t0
    report = verification_report(model, val if val is not None else render_views(cfg, "val"),
                                 seed=cfg.seed)
    return model, {"losses": losses, "report": report, "seconds": seconds}


@torch.no_grad()
def embed(model: IdentityNet, views: np.ndarray, batch: int = 256) -> torch.Tensor:
    """(identities, views, dim) embeddings of (identities, views, S, S, 3) uint8 faces."""
    model.eval()
    device = next(model.parameters()).device
    flat = views.reshape(-1, *views.shape[2:])
    out = [model(images_to_input(flat[i:i + batch]).to(device)).cpu()
           for i in range(0, len(flat), batch)]
    return torch.cat(out).view(*views.shape[:2], -1)


def verification_report(model: IdentityNet, views: np.ndarray, *, seed: int = 0
                        ) -> dict[str, Any]:
    """Face verification on (identities, views, S, S, 3) faces: all same-identity pairs of
    views and as many pairs of two different identities (random, seeded) -> {"identities",
    "pairs" (of each kind), "accuracy" at the best threshold, "threshold", "auc",
    "mean_cos_same", "mean_cos_diff"}."""
    e = embed(model, views)
    n_id, n_view = e.shape[:2]
    a, b = np.triu_indices(n_view, 1)
    same = (e[:, a] * e[:, b]).sum(-1).flatten()                    # (n_id * pairs,)
    rng = np.random.default_rng([seed, 31])
    k = len(same)
    i = rng.integers(0, n_id, k)
    j = (i + rng.integers(1, n_id, k)) % n_id                          # j != i
    u, v = rng.integers(0, n_view, k), rng.integers(0, n_view, k)
    diff = (e[i, u] * e[j, v]).sum(-1)
    scores = torch.cat([same, diff])
    labels = torch.cat([torch.ones(k), torch.zeros(k)])
    order = torch.argsort(scores, descending=True)
    s, y = scores[order], labels[order]
    # accept the top m pairs as "same", m = 0 .. 2k: correct = same accepted + diff rejected
    tp = torch.cat([torch.zeros(1), torch.cumsum(y, 0)])
    fp = torch.cat([torch.zeros(1), torch.cumsum(1 - y, 0)])
    correct = tp + (k - fp)
    m = int(torch.argmax(correct))
    threshold = float(s[m - 1]) if m > 0 else float(s[0]) + 1e-6
    auc = float(torch.trapz(tp / k, fp / k))
    return {"identities": int(n_id), "pairs": int(k), "accuracy": float(correct[m] / (2 * k)),
            "threshold": round(threshold, 4), "auc": round(auc, 4),
            "mean_cos_same": round(float(same.mean()), 4),
            "mean_cos_diff": round(float(diff.mean()), 4)}


def save_identity(directory: str | Path, model: IdentityNet, cfg: IdentityTrainConfig,
                  result: dict[str, Any]) -> Path:
    """Write checkpoint.pt and meta.json into `directory`, each atomically."""
    return save_module(directory, FORMAT, model, cfg, result)


def load_identity(path: str | Path, device: str | torch.device = "cpu"
                  ) -> tuple[IdentityNet, dict[str, Any]]:
    """(identity network in eval mode on `device`, the checkpoint's plain values) from a
    checkpoint file or the directory holding it."""
    return load_module(path, FORMAT, "identity network",
                       "swiftavatar.f2p.identity_train.save_identity",
                       IdentityCheckpointError, identity_from_args, device)


__all__ = ["FORMAT", "IdentityCheckpointError", "IdentityTrainConfig", "VIEW_BOUNDS",
           "embed", "load_identity", "render_views", "save_identity", "train_identity",
           "verification_report", "view_configs"]
