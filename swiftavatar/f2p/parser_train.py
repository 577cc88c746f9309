"""Training the face parser (swiftavatar.f2p.parser) on what the realistic domain provides:
procedural faces and their 13-class masks (swiftavatar.faces.procedural), a plain torch loop
with cross-entropy; the report is held-out pixel accuracy and mean IoU on faces the loop
never saw (ids after the training ids, same seed).

A checkpoint directory holds `checkpoint.pt` and `meta.json` (swiftavatar.f2p.checkpoint).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from swiftavatar.config import StageConfig, option
from swiftavatar.f2p.checkpoint import load_module, save_module
from swiftavatar.f2p.parser import FaceParser, FaceParserConfig, images_to_input, \
    parser_from_args
from swiftavatar.f2p.train_loop import fit, flipped

FORMAT = "swiftavatar.face_parser.v1"


class ParserCheckpointError(ValueError):
    """A path holds no usable face parser checkpoint; the message says what is expected."""


@dataclass(frozen=True)
class ParserTrainConfig(StageConfig):
    """One parser training run on procedural faces `0 .. train_faces-1` of `face_seed`,
    held-out report on the next `val_faces`."""

    model: FaceParserConfig = field(default_factory=FaceParserConfig)
    size: int = option(64, help="face side in px (divisible by 2**stages)")
    train_faces: int = option(2048, help="procedural faces to train on")
    val_faces: int = option(256, help="held-out faces for the report")
    face_seed: int = option(0, help="seed of the procedural face domain")
    epochs: int = option(6, help="epochs")
    batch: int = option(32, help="batch size")
    lr: float = option(3e-3, help="Adam learning rate (cosine-decayed to 5%)")
    seed: int = option(0, help="seed of initialisation, order and flips")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        stride = 2 ** len(self.model.channels)
        need(self.size >= 16 and self.size % stride == 0, "size",
             f"must be >= 16 and divisible by {stride}")
        for name in ("train_faces", "val_faces", "epochs", "batch"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(self.lr > 0, "lr", "must be > 0")
        return out + [("model", f"{k} {m}") for k, m in self.model.problems()]


def render_split(cfg: ParserTrainConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, S, S, 3) uint8, masks (N, S, S) uint8) of the "train" or "val" faces."""
    from swiftavatar.faces.procedural import face_images

    ids = (range(cfg.train_faces) if split == "train"
           else range(cfg.train_faces, cfg.train_faces + cfg.val_faces))
    return face_images(cfg.face_seed, list(ids), cfg.size)


def train_parser(cfg: ParserTrainConfig, *, device: str | torch.device = "cpu",
                 data: tuple[np.ndarray, np.ndarray] | None = None,
                 val: tuple[np.ndarray, np.ndarray] | None = None,
                 log: Callable[[str], None] | None = None) -> tuple[FaceParser, dict[str, Any]]:
    """Train a parser -> (parser in eval mode, {"losses": per-epoch mean loss, "report":
    held-out metrics, "seconds"}). `data` / `val` replace the rendered splits (tests)."""
    cfg.validate()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    images, masks = data if data is not None else render_split(cfg, "train")
    x_all = images_to_input(images, cfg.size)
    y_all = F.interpolate(torch.as_tensor(masks)[:, None].float(), size=(cfg.size, cfg.size),
                          mode="nearest")[:, 0].long()
    model = FaceParser(cfg.model).to(device).train()

    def batch_loss(idx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        x, y = flipped(x_all[idx], flip), flipped(y_all[idx], flip)
        return F.cross_entropy(model(x.to(device)), y.to(device))

    losses = fit(model.parameters(), len(x_all), batch_loss, epochs=cfg.epochs,
                 batch=cfg.batch, lr=cfg.lr, rng=rng, log=log, name="parser")
    model.eval()
    seconds = time.perf_counter() - t0
    report = parsing_report(model, *(val if val is not None else render_split(cfg, "val")),
                            size=cfg.size)
    return model, {"losses": losses, "report": report, "seconds": seconds}


@torch.no_grad()
def parsing_report(model: FaceParser, images: np.ndarray, masks: np.ndarray, *,
                   size: int, batch: int = 64) -> dict[str, Any]:
    """{"faces", "pixel_accuracy", "miou", "iou": {class: IoU}} over the given faces; the
    mean IoU is over the classes present in the masks or the predictions."""
    from swiftavatar.semantics import CLASSES

    model.eval()
    device = next(model.parameters()).device
    k = model.cfg.num_classes
    conf = torch.zeros(k, k, dtype=torch.int64)
    for i in range(0, len(images), batch):
        x = images_to_input(images[i:i + batch], size).to(device)
        pred = model(x).argmax(1).cpu()
        y = F.interpolate(torch.as_tensor(masks[i:i + batch])[:, None].float(),
                          size=(size, size), mode="nearest")[:, 0].long()
        conf += torch.bincount((y * k + pred).flatten(), minlength=k * k).view(k, k)
    inter = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - inter
    present = union > 0
    iou = torch.where(present, inter / union.clamp(min=1), torch.zeros_like(inter))
    names = CLASSES if k == len(CLASSES) else tuple(str(c) for c in range(k))
    return {"faces": int(len(images)),
            "pixel_accuracy": float(inter.sum() / conf.sum().clamp(min=1)),
            "miou": float(iou[present].mean()) if bool(present.any()) else 0.0,
            "iou": {names[c]: round(float(iou[c]), 4) for c in range(k) if present[c]}}


def save_parser(directory: str | Path, model: FaceParser, cfg: ParserTrainConfig,
                result: dict[str, Any]) -> Path:
    """Write checkpoint.pt and meta.json into `directory`, each atomically."""
    return save_module(directory, FORMAT, model, cfg, result)


def load_parser(path: str | Path, device: str | torch.device = "cpu"
                ) -> tuple[FaceParser, dict[str, Any]]:
    """(parser in eval mode on `device`, the checkpoint's plain values) from a checkpoint file
    or the directory holding it."""
    return load_module(path, FORMAT, "face parser", "swiftavatar.f2p.parser_train.save_parser",
                       ParserCheckpointError, parser_from_args, device)


__all__ = ["FORMAT", "ParserCheckpointError", "ParserTrainConfig", "load_parser",
           "parsing_report", "render_split", "save_parser", "train_parser"]
