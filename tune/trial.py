"""One sweep trial: Ray Train V2's pattern for Tune over Train. The trial function prepares the
trial's data (tune.stages: only the stages its parameters touch, reusing cached outputs),
builds a `TorchTrainer` of tune.worker's loop and calls `fit()`; `TuneReportCallback` passes
each epoch's report (with `val_lpips`) on to Tune.

The estimator run of trial T lives in EXP/estimators/T/ (config.json, train/checkpoint_*/,
summary.json, trial.json: the trial's values, stages and data), the layout `load_estimator`
reads. Ray Train resumes a run by its name and storage path, so a trial that a restored sweep
starts again continues from its last checkpoint.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import time
from pathlib import Path
from typing import Any

ESTIMATORS_DIR = "estimators"
TRIAL_FILE = "trial.json"


def _write_json(path: Path, data: Any) -> None:
    from swiftavatar import atomic

    atomic.write_json(path, data, default=str)


def engine_spec_of(pairs: str, schema_engine: str) -> str:
    """The engine production rendered with (its card), else the schema's engine name."""
    card = Path(pairs) / "dataset_card.json"
    if card.is_file():
        return json.loads(card.read_text())["config"]["engine"]
    return schema_engine


def train_trial(spec: Any, values: dict[str, Any], run_dir: Path, cache_dir: str, *,
                callbacks: list | tuple = ()) -> dict[str, Any]:
    """Prepare the trial's data, then train its estimator on Ray Train into `run_dir`
    (resuming a run already there). `callbacks`: Ray Train UserCallbacks (the Tune trial
    passes TuneReportCallback). Returns the summary also written to run_dir/summary.json."""
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    from swiftavatar.estimator.checkpoint import RAY_RUN_NAME
    from swiftavatar.estimator.data import RowFilter, build_dataset, count_rows, open_source
    from swiftavatar.estimator.local import check_run_dir, resolve_config, write_summary
    from tune.stages import prepare_data
    from tune.worker import sweep_loop_per_worker

    t0 = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False

    pairs, info = prepare_data(spec, values, cache_dir)
    cfg = resolve_config(spec.estimator_config(values, data=pairs, out=str(run_dir)))
    check_run_dir(cfg)
    source = open_source(pairs)
    col = source.image_column(cfg.image_column)
    rows = RowFilter("train", cfg.augmented, cfg.val_fraction)
    n_train = count_rows(source, rows)
    if n_train < cfg.batch:
        raise ValueError(f"{pairs} gives {n_train} training rows, fewer than one batch "
                         f"({cfg.batch}): lower estimator.batch")
    data_info = {"kind": source.kind, "directory": source.directory, "image_column": col,
                 "augmented": cfg.augmented, "rows_train": n_train, "rows_val": 0}
    _write_json(run_dir / TRIAL_FILE, {"trial_id": run_dir.name, "values": values, **info,
                                       "rows_train": n_train,
                                       "prepare_s": round(time.perf_counter() - t0, 2)})
    # Decoded once (at most at the model's input size) and kept in the object store: every
    # epoch then streams blocks without tasks. Ray Data's file listing asks for a whole CPU
    # each time a Parquet read runs; while other trials hold their workers' CPUs, a per-epoch
    # read could wait forever for it.
    size = min(source.image_size(col), cfg.model.input_size)
    train_data = build_dataset(source, rows, image_column=col, size=size,
                               cpus=cfg.data_cpus).materialize().randomize_block_order()
    resources = {"CPU": cfg.cpus_per_worker}
    if cfg.use_gpu:
        resources["GPU"] = cfg.gpus_per_worker
    trainer = TorchTrainer(
        sweep_loop_per_worker,
        train_loop_config={"run": cfg.to_dict(), "engine_schema": source.schema.to_json(),
                           "engine": engine_spec_of(pairs, source.schema.engine),
                           "validation": dataclasses.asdict(spec.validation),
                           "data": data_info},
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers,
                                               use_gpu=cfg.use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=RAY_RUN_NAME, storage_path=str(run_dir), callbacks=list(callbacks),
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.keep_checkpoints)),
        datasets={"train": train_data})
    try:
        result = trainer.fit()
    finally:
        del trainer, train_data
        gc.collect()
    summary = {"out": str(run_dir), "values": values, **info,
               "metrics": dict(result.metrics or {}),
               "checkpoint": result.checkpoint.path if result.checkpoint else None,
               "data": data_info, "wall_s": round(time.perf_counter() - t0, 3)}
    write_summary(str(run_dir), summary)
    return summary


def run_trial(config: dict, *, sweep: dict, exp_dir: str, cache_dir: str) -> None:
    """Tune's trainable. `config`: the trial's values {namespace: {field: value}}; `sweep`:
    the SweepSpec as a dict; `exp_dir`: the experiment directory; `cache_dir`: stage cache."""
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from tune.space import flatten
    from tune.spec import spec_from_dict

    trial_id = ray.tune.get_context().get_trial_id()
    train_trial(spec_from_dict(sweep), flatten(config), Path(exp_dir) / ESTIMATORS_DIR / trial_id,
                cache_dir, callbacks=[TuneReportCallback()])


__all__ = ["ESTIMATORS_DIR", "TRIAL_FILE", "engine_spec_of", "run_trial", "train_trial"]
