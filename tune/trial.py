"""One sweep trial: Ray Train V2's pattern for Tune over Train. The trial function prepares the
trial's data (tune.stages: only the stages its parameters touch, reusing cached outputs), then
trains through the estimator's own trainer factory (actors.train_estimator.fit_estimator: the
same `TorchTrainer` and `train_loop_per_worker` as `swiftavatar train-estimator`) with two
additions: the designer validation hook (tune.validation.TrialValidation) and
`TuneReportCallback`, which passes each epoch's report (with `val_lpips`) on to Tune.

The estimator run of trial T lives in EXP/estimators/T/ (config.json, train/checkpoint_*/,
summary.json, trial.json: the trial's values, stages and data), the layout `load_estimator`
reads. Ray Train resumes a run by its name and storage path, so a trial that a restored sweep
starts again continues from its last checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

ESTIMATORS_DIR = "estimators"
TRIAL_FILE = "trial.json"


def _write_json(path: Path, data: Any) -> None:
    from swiftavatar import atomic

    atomic.write_json(path, data, default=str)


def engine_spec_of(pairs: str, schema_engine: str, engine: str | None = None) -> str:
    """The engine a sweep renders with: the sweep file's `data.engine` (`engine`: the user's own
    file, named on the command line, so any engine spec), else the one production rendered
    with (its dataset card), else the schema's engine name. A name read from the dataset must
    be a registered engine (swiftavatar.engines.registry.check_registered_engine): a dataset
    may come from elsewhere, and must not pick code to import or a server to contact."""
    from swiftavatar.engines.registry import check_registered_engine

    if engine:
        return engine
    card = Path(pairs) / "dataset_card.json"
    source, name = f"{pairs} (schema)", schema_engine
    if card.is_file():
        source, name = str(card), json.loads(card.read_text())["config"]["engine"]
    check_registered_engine(name, source, hint=f"set `data.engine: {name}` in the sweep file")
    return name


def train_trial(spec: Any, values: dict[str, Any], run_dir: Path, cache_dir: str, *,
                callbacks: list | tuple = ()) -> dict[str, Any]:
    """Prepare the trial's data, then train its estimator on Ray Train into `run_dir`
    (resuming a run already there), validated against the designer after every epoch.
    `callbacks`: Ray Train UserCallbacks (the Tune trial passes TuneReportCallback). Returns
    the summary also written to run_dir/summary.json."""
    from actors.train_estimator import describe_data, fit_estimator
    from actors.trainer import quiet_ray_data
    from swiftavatar.estimator.data import open_source
    from swiftavatar.estimator.local import check_run_dir, resolve_config, write_summary
    from tune.stages import prepare_data
    from tune.validation import TrialValidation

    t0 = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    quiet_ray_data()
    pairs, info = prepare_data(spec, values, cache_dir)
    cfg = resolve_config(spec.estimator_config(values, data=pairs, out=str(run_dir)))
    check_run_dir(cfg)
    source = open_source(pairs)
    data_info = describe_data(cfg, source, "lower estimator.batch")
    _write_json(run_dir / TRIAL_FILE, {"trial_id": run_dir.name, "values": values, **info,
                                       "rows_train": data_info["rows_train"],
                                       "prepare_s": round(time.perf_counter() - t0, 2)})
    # The rows are decoded once (at most at the model's input size) and kept in the object
    # store: every epoch then streams blocks without tasks. Ray Data's file listing asks for a
    # whole CPU each time a Parquet read runs; while other trials hold their workers' CPUs, a
    # per-epoch read could wait forever for it.
    validation = TrialValidation(dataclasses.asdict(spec.validation),
                                 engine_spec_of(pairs, source.schema.engine, spec.engine))
    result = fit_estimator(cfg, source, data_info, materialize=True, validation=validation,
                           callbacks=callbacks)
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
