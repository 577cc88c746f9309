"""Generator training in one process, without Ray: for a single GPU box (or a quick CPU run)
where a cluster is not worth starting. The same `GanTrainer` and `run_loop` as the Ray Train
workers, the same run-directory layout (config.json, samples/, train/checkpoint_<step>/), so
`load_generator(run_dir)` and a later `swiftavatar train-generator` resume read it alike.

Training images are held in memory as uint8 arrays (a few hundred MB at 64 px even for 100k
images) and batches are drawn on the training device: no decode work per step.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from swiftavatar.rundir import RunDir, publish_checkpoint
from swiftavatar.training.checkpoint import (
    CONFIG_FILE, RAY_RUN_NAME, checkpoint_dir_name, list_checkpoints, read_checkpoint,
    save_checkpoint)
from swiftavatar.training.gan_config import IDENTITY_FIELDS, GanTrainConfig
from swiftavatar.training.gan_loop import GanTrainer, run_loop


def memory_batches(images: np.ndarray, masks: np.ndarray | None, batch: int, seed: int,
                   device: torch.device | str, *, deadline: float | None = None,
                   start_epoch: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Shuffled epochs of {"image": (batch, H, W, 3) uint8[, "mask": (batch, H, W) uint8]}
    on `device`, forever or until time.monotonic() passes `deadline`. Epoch e's order depends
    only on (seed, e)."""
    n = images.shape[0]
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if masks is not None and masks.shape != images.shape[:3]:
        raise ValueError(f"masks must be (N, H, W) = {images.shape[:3]}, got {masks.shape}")
    if n < batch:
        raise ValueError(f"{n} training images cannot fill one batch of {batch}: use more "
                         f"images or a smaller batch")
    img = torch.from_numpy(np.ascontiguousarray(images)).to(device)        # (N, H, W, 3)
    msk = None if masks is None else torch.from_numpy(np.ascontiguousarray(masks)).to(device)
    epoch = start_epoch
    while True:
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n)).to(device)
        for i in range(0, n - batch + 1, batch):
            if deadline is not None and time.monotonic() > deadline:
                return
            idx = order[i:i + batch]
            out = {"image": img[idx]}
            if msk is not None:
                out["mask"] = msk[idx]
            yield out
        epoch += 1


class LocalRun:
    """The report target of `run_loop` in one process: checkpoints go to OUT/train/ (the
    directory Ray Train would use), the oldest beyond `keep_checkpoints` are deleted."""

    def __init__(self, cfg: GanTrainConfig) -> None:
        self.cfg = cfg
        self.train_dir = Path(cfg.out) / RAY_RUN_NAME
        self.history: list[dict[str, Any]] = []

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None, step: int) -> None:
        self.history.append(dict(metrics))
        if checkpoint_dir is None:
            return
        dest = self.train_dir / checkpoint_dir_name(step)
        publish_checkpoint(checkpoint_dir, dest, self.cfg.keep_checkpoints,
                           lambda: list_checkpoints(self.cfg.out))


def train_in_process(cfg: GanTrainConfig, images: np.ndarray, masks: np.ndarray | None,
                     device: torch.device | str = "cpu", *, time_limit_s: float | None = None,
                     init: dict[str, Any] | None = None
                     ) -> tuple[GanTrainer, list[dict[str, Any]]]:
    """Train (or resume) the run in cfg.out on in-memory images until cfg.steps, or until
    `time_limit_s` has passed (then a checkpoint is written at the step reached). Returns the
    trainer and the metrics it reported; its last checkpoint is OUT/train/checkpoint_<step>/."""
    cfg = cfg.validate().resolved()
    out = Path(cfg.out)
    RunDir(out).check_identity(CONFIG_FILE, cfg.to_dict(), keys=IDENTITY_FIELDS,
                               fix="use a new out")
    found = list_checkpoints(out)
    resume = read_checkpoint(found[max(found)]) if found else None
    trainer = GanTrainer(cfg, device, resume=resume, init=init)
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    run = LocalRun(cfg)
    batches = memory_batches(images, masks if cfg.disc.seg else None, cfg.batch, cfg.seed,
                             trainer.device, deadline=deadline,
                             start_epoch=trainer.images_seen // max(len(images), 1))
    run_loop(trainer, batches, resumed=resume is not None, report=run.report)
    if trainer.step < cfg.total_steps and trainer.step not in list_checkpoints(out):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="gan-ckpt-") as tmp_dir:
            save_checkpoint(tmp_dir, trainer.payload(), trainer.sample_png())
            run.report({"step": trainer.step, "stopped": "time limit"}, tmp_dir, trainer.step)
    return trainer, run.history


__all__ = ["LocalRun", "memory_batches", "train_in_process"]
