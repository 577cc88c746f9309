"""Building, restoring and running a sweep's `Tuner`.

Layout of OUT (the sweep's --out):
    OUT/NAME/                 the Tune experiment (tuner.pkl, experiment_state-*.json, one
                              directory per trial named by its id) plus
      sweep.json              the resolved sweep file and its fingerprint
      estimators/<trial>/     each trial's estimator run (tune.trial)
      results.md, results.csv, best_config.json, lpips_by_param.png   (tune.results)
    OUT/cache/                stage outputs shared by trials and sweeps (tune.stages)
A sweep whose experiment directory can be restored is resumed (`Tuner.restore`): finished
trials are kept, unfinished and errored ones run again (their estimator runs continue from
their last checkpoints). `restart=True` deletes OUT/NAME first (the cache stays).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swiftavatar import atomic
from swiftavatar.rundir import LOCK_FILE
from tune.space import AUGMENT, PRODUCE, SweepError, param_space
from tune.spec import METRIC, MODE, TIME_ATTR, SweepSpec

SWEEP_FILE = "sweep.json"
LISTING_CPUS = 1.0           # Ray Data's ListFiles task (Parquet reads) asks for a whole CPU
CACHE_DIR = "cache"


@dataclass(frozen=True)
class SweepPaths:
    out: Path
    experiment: Path
    cache: Path

    @classmethod
    def of(cls, spec: SweepSpec, out: str | Path) -> "SweepPaths":
        root = Path(os.path.abspath(os.path.expanduser(str(out))))
        return cls(root, root / spec.name, root / CACHE_DIR)


def trial_cpus(spec: SweepSpec) -> float:
    """CPUs one trial holds at its busiest: the trial function plus its training (workers and
    a data task) or its dataset stage, whichever is larger."""
    est = spec.estimator_config(data="-", out="-")
    need = est.num_workers * est.cpus_per_worker + est.data_cpus
    stages = spec.stages
    if AUGMENT in stages:
        need = max(need, spec.resources.stage_cpus)
    if PRODUCE in stages:
        w = int(spec.produce.get("workers", 2))
        need = max(need, w * float(spec.produce.get("cpus_per_worker", 0.5))
                   + float(spec.produce.get("render_cpus", 0.25)))
    return spec.resources.trial_cpus + need


def check_cluster(spec: SweepSpec, cpus: float) -> None:
    """Refuse a sweep whose concurrent trials cannot all be placed on `cpus` CPUs (Ray would
    wait forever, or starve the data tasks)."""
    one = trial_cpus(spec)
    if one > cpus + 1e-9:
        raise SweepError(f"one trial needs {one:g} CPUs (resources.trial_cpus + estimator "
                         f"num_workers x cpus_per_worker + data_cpus, or its stage) but the Ray "
                         f"cluster has {cpus:g}: lower estimator.num_workers / cpus_per_worker")
    n = spec.budget.max_concurrent_trials
    if n * one > cpus + 1e-9:
        raise SweepError(f"budget.max_concurrent_trials {n} x {one:g} CPUs per trial = "
                         f"{n * one:g} CPUs, but the Ray cluster has {cpus:g}: lower "
                         f"budget.max_concurrent_trials to {max(1, int(cpus // one))}")
    # a trial decodes its data with a Parquet read whose file listing takes a whole CPU,
    # while the other trials hold their training workers
    est = spec.estimator_config(data="-", out="-")
    held = spec.resources.trial_cpus + est.num_workers * est.cpus_per_worker
    listing = (n - 1) * held + spec.resources.trial_cpus + LISTING_CPUS
    if listing > cpus + 1e-9:
        raise SweepError(f"budget.max_concurrent_trials {n}: while {n - 1} trial(s) train "
                         f"({held:g} CPUs each), the next one's data read needs "
                         f"{spec.resources.trial_cpus + LISTING_CPUS:g} CPUs more (Ray Data "
                         f"lists files with a whole CPU); the Ray cluster has {cpus:g}: lower "
                         f"budget.max_concurrent_trials or the estimator's CPUs")


def check_inputs(spec: SweepSpec) -> None:
    """The data the sweep starts from exists and can be validated against a designer."""
    from swiftavatar.estimator.data import open_source
    from swiftavatar.evaluation import available_designers
    from swiftavatar.engines.registry import UnknownEngineError
    from swiftavatar.evaluation.evalset import EvalSet
    from tune.trial import engine_spec_of

    if not Path(spec.pairs).is_dir():
        raise SweepError(f"data.pairs: no such directory {spec.pairs} (make a paired dataset "
                         f"with `swiftavatar produce` or `swiftavatar demo`, or pass --pairs)")
    source = open_source(spec.pairs)
    if source.schema.engine not in available_designers():
        raise SweepError(f"data.pairs: engine {source.schema.engine!r} has no designer to "
                         f"validate against (have: {', '.join(available_designers())})")
    try:  # a dataset's engine must be registered unless the sweep file names one
        engine_spec_of(spec.pairs, source.schema.engine, spec.engine)
    except UnknownEngineError as e:
        raise SweepError(f"data.pairs: {e}") from None
    produce_seed = 0
    card = Path(spec.pairs) / "dataset_card.json"
    if card.is_file():
        produce_seed = int(json.loads(card.read_text())["config"]["seed"])
    seeds = {produce_seed, spec.estimator_config(data="-", out="-").seed}
    EvalSet(seed=spec.validation.seed, count=1).check_disjoint(seeds)
    needs_card = set(spec.stages) & {AUGMENT, PRODUCE, "finetune"}
    if needs_card and not card.is_file():
        raise SweepError(f"data.pairs: {', '.join(sorted(needs_card))} trials need the source's "
                         f"dataset_card.json (a `swiftavatar produce` output), {spec.pairs} "
                         f"has none")


def build_tuner(spec: SweepSpec, paths: SweepPaths, *, restart: bool = False):
    """(Tuner, resumed): a restored Tuner when the experiment can be restored (and the sweep
    file has not changed since), else a new one."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from actors.ray_logs import verbose as ray_verbose
    from tune.reaper import PlacementGroupReaper
    from tune.trial import ESTIMATORS_DIR, run_trial

    exp = paths.experiment
    if restart and exp.exists():         # all but the lock the running driver holds
        for p in exp.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.name != LOCK_FILE:
                p.unlink()
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, sweep=spec.to_dict(), exp_dir=str(exp),
                             cache_dir=str(paths.cache)),
        {"CPU": spec.resources.trial_cpus})
    recorded = exp / SWEEP_FILE
    if exp.is_dir() and tune.Tuner.can_restore(str(exp)):
        old = json.loads(recorded.read_text()).get("fingerprint") if recorded.is_file() else None
        if old != spec.fingerprint():
            raise SweepError(f"{exp} holds a sweep made from a different sweep file (fingerprint "
                             f"{old} != {spec.fingerprint()}): pass --restart to replace it, or "
                             f"another --out")
        return tune.Tuner.restore(str(exp), trainable, resume_unfinished=True,
                                  resume_errored=True), True
    exp.mkdir(parents=True, exist_ok=True)
    atomic.write_json(recorded, {"fingerprint": spec.fingerprint(), "sweep": spec.to_dict()})
    s = spec.scheduler
    # max_t one past the last epoch: a trial that trains every epoch ends by itself (a STOP
    # at its last report would end its actor while fit() is still returning)
    scheduler = (ASHAScheduler(time_attr=TIME_ATTR, max_t=spec.budget.epochs + 1,
                               grace_period=s.grace_period, reduction_factor=s.reduction_factor)
                 if s.type == "asha" else FIFOScheduler())
    tuner = tune.Tuner(
        trainable, param_space=param_space(spec.params),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode=MODE, scheduler=scheduler,
            search_alg=BasicVariantGenerator(
                max_concurrent=spec.budget.max_concurrent_trials, random_state=spec.seed),
            num_samples=spec.budget.num_samples,
            max_concurrent_trials=spec.budget.max_concurrent_trials,
            time_budget_s=spec.budget.time_budget_s, trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=spec.name, storage_path=str(paths.out),
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
            callbacks=[PlacementGroupReaper(str(exp / ESTIMATORS_DIR))],
            verbose=1 if ray_verbose() else 0))   # Tune's status tables: --verbose only
    return tuner, False


def _trial_dirname(trial: Any) -> str:
    return str(trial.trial_id)


def run_sweep(spec: SweepSpec, out: str | Path, *, restart: bool = False,
              ray_address: str | None = None) -> dict[str, Any]:
    """Run (or resume) the sweep on the running Ray instance (else the cluster at
    `ray_address`, else a local one it starts); write the results table, best config and
    plot. Returns tune.results.write_results' summary plus {"resumed"}."""
    from actors.resources import cluster_capacity
    from actors.session import ray_session
    from swiftavatar.rundir import RunDir
    from tune.results import write_results

    spec = replace(spec, pairs=os.path.abspath(spec.pairs),
                   renders=os.path.abspath(spec.renders) if spec.renders else None)
    check_inputs(spec)
    paths = SweepPaths.of(spec, out)
    with RunDir(paths.experiment, "sweep").lock(), \
            ray_session(ray_address, log_dir=paths.out):  # one driver
        check_cluster(spec, cluster_capacity()[0])
        tuner, resumed = build_tuner(spec, paths, restart=restart)
        grid = tuner.fit()
        summary = write_results(spec, grid, paths.experiment)
    return {**summary, "resumed": resumed}


__all__ = ["CACHE_DIR", "SWEEP_FILE", "SweepPaths", "build_tuner", "check_cluster",
           "check_inputs", "run_sweep", "trial_cpus"]
