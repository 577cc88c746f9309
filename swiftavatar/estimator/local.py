"""Estimator training in one process, without Ray (tests, benchmarks, a single GPU box), and
the run-directory checks both paths share. The same `EstimatorTrainer` and `run_epochs` as the
Ray Train workers and the same layout (config.json, train/checkpoint_<epoch>/, summary.json),
so `load_estimator(out)` and a later run into the same `out` (either path) read it alike.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from swiftavatar.rundir import RunDir, RunMismatchError, publish_checkpoint
from swiftavatar.estimator.checkpoint import (CONFIG_FILE, RAY_RUN_NAME, SUMMARY_FILE,
                                              checkpoint_dir_name, list_checkpoints,
                                              read_checkpoint)
from swiftavatar.estimator.config import IDENTITY_FIELDS, EstimatorTrainConfig
from swiftavatar.estimator.data import (EstimatorArrays, RowFilter, load_arrays,
                                        memory_batches, open_source)
from swiftavatar.estimator.loop import EstimatorTrainer, run_epochs


def resolve_config(cfg: EstimatorTrainConfig) -> EstimatorTrainConfig:
    """Validate and make local paths absolute (what config.json records)."""
    from dataclasses import replace

    cfg.validate()
    if "://" in cfg.out:
        raise ValueError(f"out {cfg.out!r}: the run directory must be a local or mounted "
                         f"path (the data may be a URI)")
    absolute = lambda p: p if "://" in p else os.path.abspath(os.path.expanduser(p))  # noqa
    return replace(cfg, data=absolute(cfg.data), out=absolute(cfg.out)).validate()


def check_run_dir(cfg: EstimatorTrainConfig) -> bool:
    """Write out/config.json, or check the one there (a re-run: IDENTITY_FIELDS must match).
    True when it was there."""
    return RunDir(cfg.out).check_identity(CONFIG_FILE, cfg.to_dict(), keys=IDENTITY_FIELDS,
                                          fix="use a new out") is not None


def write_summary(out: str, summary: dict[str, Any]) -> None:
    RunDir(out).write_json(SUMMARY_FILE, summary, default=str)


class LocalRun:
    """The report target of `run_epochs` in one process: checkpoints are copied to
    OUT/train/checkpoint_<epoch>/ (where Ray Train puts them); the oldest beyond
    `keep_checkpoints` are deleted."""

    def __init__(self, cfg: EstimatorTrainConfig) -> None:
        self.cfg = cfg
        self.history: list[dict[str, Any]] = []

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None, epoch: int) -> None:
        self.history.append(dict(metrics))
        if checkpoint_dir is None:
            return
        dest = Path(self.cfg.out) / RAY_RUN_NAME / checkpoint_dir_name(epoch)
        publish_checkpoint(checkpoint_dir, dest, self.cfg.keep_checkpoints,
                           lambda: list_checkpoints(self.cfg.out))


def fit_in_process(cfg: EstimatorTrainConfig, *, train: EstimatorArrays | None = None,
                   val: EstimatorArrays | None = None, device: str | torch.device = "cpu",
                   hub_dir: str | None = None
                   ) -> tuple[EstimatorTrainer, list[dict[str, Any]]]:
    """Train (or resume) the run in cfg.out until cfg.epochs, in this process. `train` / `val`
    are in-memory splits; when not given they are read from cfg.data (val only when
    val_fraction > 0). Returns the trainer and the metrics reported per epoch."""
    cfg = resolve_config(cfg)
    source = open_source(cfg.data)
    col = source.image_column(cfg.image_column)
    size = source.decode_size(col, cfg.model.input_size)
    if train is None:
        train = load_arrays(cfg.data, RowFilter("train", cfg.augmented, cfg.val_fraction),
                            image_column=col, size=size)
    if val is None and cfg.val_fraction > 0:
        val = load_arrays(cfg.data, RowFilter("val", cfg.augmented, cfg.val_fraction),
                          image_column=col, size=size)
    if train.schema.fingerprint != source.schema.fingerprint:
        raise ValueError(f"the training arrays follow schema {train.schema.fingerprint}, the "
                         f"dataset {cfg.data} has {source.schema.fingerprint}")
    with RunDir(cfg.out, "train-estimator").lock():   # one driver per run directory
        check_run_dir(cfg)
        found = list_checkpoints(cfg.out)
        resume = read_checkpoint(found[max(found)]) if found else None
        trainer = EstimatorTrainer(cfg, train.schema, device, resume=resume, hub_dir=hub_dir)
        data_info = {"kind": source.kind, "directory": source.directory, "image_column": col,
                     "augmented": cfg.augmented, "rows_train": len(train),
                     "rows_val": len(val) if val is not None else 0}
        epochs = memory_batches(train, cfg.batch, cfg.seed, start_epoch=trainer.epoch)
        val_fn = None
        if val is not None and len(val):
            val_fn = lambda: next(memory_batches(val, cfg.batch, cfg.seed, drop_last=False))  # noqa
        run = LocalRun(cfg)
        run_epochs(trainer, lambda epoch: next(epochs), val_fn, report=run.report,
                   data_info=data_info)
        last = run.history[-1] if run.history else {}
        found = list_checkpoints(cfg.out)
        write_summary(cfg.out, {"out": cfg.out, "epoch": trainer.epoch, "epochs": cfg.epochs,
                                "step": trainer.step, "metrics": last, "data": data_info,
                                "checkpoint": str(found[max(found)]) if found else None,
                                "backbone_info": trainer.model.backbone_info})
        return trainer, run.history


__all__ = ["LocalRun", "RunMismatchError", "check_run_dir", "fit_in_process", "resolve_config",
           "write_summary"]
