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

import gc
import json
import signal
import threading
import time
from typing import Any

from swiftavatar.estimator.checkpoint import META_FILE, RAY_RUN_NAME, list_checkpoints
from swiftavatar.estimator.config import EstimatorTrainConfig
from swiftavatar.estimator.data import RowFilter, build_dataset, count_rows, open_source
from swiftavatar.estimator.local import check_run_dir, resolve_config, write_summary
from swiftavatar.rundir import RunDir


class EstimatorTrainingError(RuntimeError):
    """Training stopped; finished checkpoints are kept and a re-run resumes from the last."""


def check_resources(cfg: EstimatorTrainConfig) -> None:
    """Refuse requests the Ray cluster cannot place (they would wait forever)."""
    from actors.resources import check_training_resources

    check_training_resources(cfg)


def run_estimator_training(cfg: EstimatorTrainConfig) -> dict[str, Any]:
    """Train (or resume) the run `cfg` describes on the running Ray instance (or a local one
    it starts, see actors.session.ray_session). Returns the summary (also in out/summary.json):
    out, epoch, epochs, step, metrics of the last report, checkpoint path, data, wall_s.
    A second driver into the same local `out` is refused (RunLockedError)."""
    t0 = time.perf_counter()
    cfg = resolve_config(cfg)
    with RunDir(cfg.out, "train-estimator").lock():
        return _train(cfg, t0)


def _train(cfg: EstimatorTrainConfig, t0: float) -> dict[str, Any]:
    import ray
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    from actors.session import ray_session
    from swiftavatar.estimator.loop import train_loop_per_worker

    source = open_source(cfg.data)
    col = source.image_column(cfg.image_column)
    train_rows = RowFilter("train", cfg.augmented, cfg.val_fraction)
    val_rows = RowFilter("val", cfg.augmented, cfg.val_fraction)
    n_train = count_rows(source, train_rows)
    if n_train < cfg.batch:
        raise ValueError(f"{cfg.data} gives {n_train} training rows, fewer than one batch "
                         f"({cfg.batch}): produce more pairs or lower the batch")
    check_run_dir(cfg)
    found = list_checkpoints(cfg.out)
    data_info = {"kind": source.kind, "directory": source.directory, "image_column": col,
                 "augmented": cfg.augmented, "rows_train": n_train,
                 "rows_val": count_rows(source, val_rows) if cfg.val_fraction > 0 else 0}
    loop_config = {"run": cfg.to_dict(), "engine_schema": source.schema.to_json(),
                   "resume_from": str(found[max(found)]) if found else None,
                   "data": data_info}
    with ray_session():
        check_resources(cfg)
        data_ctx = ray.data.DataContext.get_current()
        data_ctx.enable_progress_bars = False       # rank 0 prints the training lines
        data_ctx.print_on_execution_start = False
        size = source.decode_size(col, cfg.model.input_size)
        datasets = {"train": build_dataset(source, train_rows, image_column=col, size=size,
                                           cpus=cfg.data_cpus)}
        if cfg.val_fraction > 0:
            datasets["val"] = build_dataset(source, val_rows, image_column=col, size=size,
                                            cpus=cfg.data_cpus, shuffle_files=False)
        n_rows = n_train + data_info["rows_val"]
        data_info["decode_size"] = size
        data_info["materialized"] = _fits_in_memory(cfg, n_rows, size)
        if data_info["materialized"]:
            # decode once: each epoch then reads blocks from the object store instead of
            # re-reading Parquet and decoding PNGs (seconds per epoch on small CPU runs);
            # the block order is drawn anew each epoch, rows mix in the local shuffle buffer
            datasets = {k: (ds.materialize().randomize_block_order() if k == "train"
                            else ds.materialize()) for k, ds in datasets.items()}
        resources = {"CPU": cfg.cpus_per_worker}
        if cfg.use_gpu:
            resources["GPU"] = cfg.gpus_per_worker
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config=loop_config,
            scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers,
                                                   use_gpu=cfg.use_gpu,
                                                   resources_per_worker=resources),
            run_config=ray.train.RunConfig(
                name=RAY_RUN_NAME, storage_path=cfg.out,
                failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.keep_checkpoints)),
            datasets=datasets)
        previous_sigint = signal.getsignal(signal.SIGINT) if _main_thread() else None
        try:
            result = trainer.fit()
        except ray.train.TrainingFailedError as err:
            raise EstimatorTrainingError(
                f"estimator training failed ({_first_line(err)}); checkpoints so far are kept "
                f"in {cfg.out}/{RAY_RUN_NAME}, re-run the same command to resume") from err
        finally:
            # fit() installs a SIGINT handler holding the controller actor's handle, which
            # would keep the controller (and its data actors) alive: restore ours, collect.
            if previous_sigint is not None:
                signal.signal(signal.SIGINT, previous_sigint)
            del trainer, datasets
            gc.collect()
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


def _fits_in_memory(cfg: EstimatorTrainConfig, rows: int, size: int) -> bool:
    """Whether the decoded rows (uint8 images, targets) fit cfg.materialize_mb and half of
    the object store Ray has free."""
    import ray

    need_mb = rows * (size * size * 3 + 256) / 2 ** 20
    store_mb = ray.available_resources().get("object_store_memory", 0.0) / 2 ** 20
    return need_mb <= min(cfg.materialize_mb, store_mb / 2)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


__all__ = ["EstimatorTrainingError", "check_resources", "run_estimator_training"]
