"""Avatar-estimator training on Ray Train (paper section 3.3, Eq. 8): data-parallel (DDP: gloo on
CPU, NCCL on GPU) over `num_workers` workers, each reading its share of the Parquet rows through
Ray Data (`swiftavatar.estimator.data.build_dataset`) and running
`swiftavatar.estimator.loop.train_loop_per_worker`.

A run lives in one directory (`out`): config.json, train/ (Ray Train's run: one
checkpoint_<epoch>/ per saved epoch) and summary.json. Running again with the same `out`
resumes from the last checkpoint (Ray Train V2 restores its run by name and storage path; a run
directory written by `fit_in_process` is picked up from its newest checkpoint); only fields
that define the run (config.IDENTITY_FIELDS) must match, so `epochs` can grow. The directory
is a `swiftavatar.rundir.RunDir`: a second driver into the same `out` is refused while the
first holds its lock.
"""
from __future__ import annotations

import json
import time
from typing import Any

from swiftavatar.estimator.checkpoint import META_FILE, RAY_RUN_NAME, list_checkpoints
from swiftavatar.estimator.config import EstimatorTrainConfig
from swiftavatar.estimator.data import (DataSource, RowFilter, build_dataset, count_rows,
                                        open_source)
from swiftavatar.estimator.local import check_run_dir, resolve_config, write_summary
from swiftavatar.estimator.loop import ValidationHook
from swiftavatar.rundir import RunDir


class EstimatorTrainingError(RuntimeError):
    """Training stopped; finished checkpoints are kept and a re-run resumes from the last."""


def check_resources(cfg: EstimatorTrainConfig) -> None:
    """Refuse requests the Ray cluster cannot place (they would wait forever)."""
    from actors.resources import check_training_resources

    check_training_resources(cfg)


def run_estimator_training(cfg: EstimatorTrainConfig,
                           ray_address: str | None = None) -> dict[str, Any]:
    """Train (or resume) the run `cfg` describes on the running Ray instance (else the cluster
    at `ray_address`, else a local one it starts, see actors.session.ray_session). Returns the
    summary (also in out/summary.json): out, epoch, epochs, step, metrics of the last report,
    checkpoint path, data, wall_s. A second driver into the same local `out` is refused
    (RunLockedError)."""
    t0 = time.perf_counter()
    cfg = resolve_config(cfg)
    with RunDir(cfg.out, "train-estimator").lock():
        return _train(cfg, t0, ray_address)


def _train(cfg: EstimatorTrainConfig, t0: float, ray_address: str | None) -> dict[str, Any]:
    from actors.session import ray_session

    source = open_source(cfg.data)
    data_info = describe_data(cfg, source, "produce more pairs or lower the batch")
    check_run_dir(cfg)
    with ray_session(ray_address, log_dir=cfg.out, relay=("[train-estimator] ",)):
        check_resources(cfg)
        result = fit_estimator(cfg, source, data_info, error=EstimatorTrainingError)
    found = list_checkpoints(cfg.out)
    latest = found[max(found)] if found else None
    meta = (json.loads((latest / META_FILE).read_text()) if latest is not None
            and (latest / META_FILE).is_file() else {})
    metrics = dict(result.metrics or meta.get("metrics") or {})
    summary = {"out": cfg.out, "epoch": int(meta.get("epoch", 0)), "epochs": cfg.epochs,
               "step": int(meta.get("step", 0)), "metrics": metrics,
               "checkpoint": str(latest) if latest is not None else None, "data": data_info,
               "backbone_info": meta.get("backbone_info"),
               "wall_s": round(time.perf_counter() - t0, 3)}
    write_summary(cfg.out, summary)
    return summary


def describe_data(cfg: EstimatorTrainConfig, source: DataSource, fix: str) -> dict[str, Any]:
    """What a run trains on (stored in its checkpoints and summary): {kind, directory,
    image_column, augmented, rows_train, rows_val}. Refuses data with fewer training rows than
    one batch; `fix` says what to do about it."""
    n_train = count_rows(source, RowFilter("train", cfg.augmented, cfg.val_fraction))
    if n_train < cfg.batch:
        raise ValueError(f"{cfg.data} gives {n_train} training rows, fewer than one batch "
                         f"({cfg.batch}): {fix}")
    n_val = (count_rows(source, RowFilter("val", cfg.augmented, cfg.val_fraction))
             if cfg.val_fraction > 0 else 0)
    return {"kind": source.kind, "directory": source.directory,
            "image_column": source.image_column(cfg.image_column), "augmented": cfg.augmented,
            "rows_train": n_train, "rows_val": n_val}


def fit_estimator(cfg: EstimatorTrainConfig, source: DataSource, data_info: dict[str, Any], *,
                  materialize: bool | None = None, validation: ValidationHook | None = None,
                  callbacks: list | tuple = (), error: type[Exception] | None = None):
    """The estimator's Ray Train run, for a plain run and a sweep trial alike: the datasets
    (train, and val when cfg.val_fraction > 0) of `source`, decoded once into the object store
    when `materialize` (None: when they fit, see _fits_in_memory), then
    `swiftavatar.estimator.loop.train_loop_per_worker` through actors.trainer.fit_trainer,
    resuming the newest checkpoint in cfg.out. A trial passes its `validation` hook and
    `TuneReportCallback`. Records decode_size and materialized in `data_info` (which the
    checkpoints store). Returns the ray.train.Result."""
    from actors.trainer import fit_trainer, quiet_ray_data
    from swiftavatar.estimator.loop import train_loop_per_worker

    quiet_ray_data()                            # rank 0 prints the training lines
    col = data_info["image_column"]
    size = source.decode_size(col, cfg.model.input_size)
    splits = ("train", "val") if cfg.val_fraction > 0 else ("train",)
    datasets = {k: build_dataset(source, RowFilter(k, cfg.augmented, cfg.val_fraction),
                                 image_column=col, size=size, cpus=cfg.data_cpus,
                                 shuffle_files=k == "train") for k in splits}
    if materialize is None:
        materialize = _fits_in_memory(cfg, data_info["rows_train"] + data_info["rows_val"], size)
    data_info.update(decode_size=size, materialized=materialize)
    if materialize:
        # decode once: each epoch then reads blocks from the object store instead of
        # re-reading Parquet and decoding PNGs (seconds per epoch on small CPU runs);
        # the block order is drawn anew each epoch, rows mix in the local shuffle buffer
        datasets = {k: (ds.materialize().randomize_block_order() if k == "train"
                        else ds.materialize()) for k, ds in datasets.items()}
    found = list_checkpoints(cfg.out)
    loop_config = {"run": cfg.to_dict(), "engine_schema": source.schema.to_json(),
                   "resume_from": str(found[max(found)]) if found else None,
                   "data": data_info, "validation": validation}
    return fit_trainer(train_loop_per_worker, loop_config, cfg, datasets, name=RAY_RUN_NAME,
                       callbacks=callbacks, error=error, what="estimator training")


def _fits_in_memory(cfg: EstimatorTrainConfig, rows: int, size: int) -> bool:
    """Whether the decoded rows (uint8 images, targets) fit cfg.materialize_mb and half of
    the object store Ray has free."""
    import ray

    need_mb = rows * (size * size * 3 + 256) / 2 ** 20
    store_mb = ray.available_resources().get("object_store_memory", 0.0) / 2 ** 20
    return need_mb <= min(cfg.materialize_mb, store_mb / 2)


__all__ = ["EstimatorTrainingError", "check_resources", "describe_data", "fit_estimator",
           "run_estimator_training"]
