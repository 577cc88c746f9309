"""Sweep definition files: YAML read into a validated `SweepSpec`.

Sections (tune/README.md explains each; tune/*.yaml are commented examples):
    name, description, seed          experiment name (OUT/NAME), free text, search seed
    data: {pairs, renders, engine}   the paired dataset trials start from; engine renders
                                     (only finetune.* trials use them); the engine to render
                                     with (default: the dataset card's, registered names only)
    params: {namespace.field: value} the search space (tune.space)
    validation: {...}                held-out validation faces (never the test EvalSet)
    budget: {...}                    epochs per trial, samples, concurrency, time, failures
    scheduler: {...}                 asha (default) or fifo
    resources: {...}                 CPUs of the trial function and of its dataset stages
    estimator / produce / finetune   base configs of the stages (fields of
                                     EstimatorTrainConfig / ProduceConfig / GanTrainConfig)
Every unknown key is an error naming `section.key`; parameter values are checked against the
stage configs they end up in.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from tune.space import (FINETUNE, PRODUCE, Param, SweepError, did_you_mean, parse_param,
                        stages_for)

VAL_SEED = 20231105          # validation faces: neither a training seed nor the test EVAL_SEED
METRIC, MODE = "val_lpips", "min"
TIME_ATTR = "epoch"          # ASHA's clock: finished estimator epochs (survives a restore)
# estimator fields the sweep sets itself (data, out, epochs) or that would break it
_ESTIMATOR_FIXED = ("data", "out", "epochs", "progress")


@dataclass(frozen=True)
class ValidationSpec:
    """Validation faces `EvalSet(seed, count, size)` scored like the evaluation (LPIPS between
    the rendered prediction and the designer's avatar), at `size` px."""

    seed: int = VAL_SEED
    count: int = 64
    size: int = 64            # the evaluation reports 128 px; 64 px costs 5x less per epoch
    lpips_net: str = "vgg"
    lpips_backbone: str | None = None
    lpips_allow_random: bool = False   # tests only: a random LPIPS trunk when none is found

    def eval_set(self):
        from swiftavatar.evaluation import EvalSet

        return EvalSet(seed=self.seed, count=self.count, size=self.size)


@dataclass(frozen=True)
class Budget:
    epochs: int = 3                     # estimator epochs per trial (ASHA's max_t)
    num_samples: int = 1                # draws of the search space (each grid point repeats)
    max_concurrent_trials: int = 1
    time_budget_s: float | None = None  # stop starting / running trials after this long
    max_failures: int = 0               # retries of a failed trial


@dataclass(frozen=True)
class SchedulerSpec:
    type: str = "asha"                  # asha | fifo
    grace_period: int = 1               # epochs before ASHA may stop a trial
    reduction_factor: float = 2.0


@dataclass(frozen=True)
class Resources:
    trial_cpus: float = 0.1             # the trial function itself (it mostly waits)
    stage_cpus: float = 1.0             # a re-augmentation task


@dataclass(frozen=True)
class SweepSpec:
    name: str
    pairs: str
    params: tuple[Param, ...]
    renders: str | None = None
    description: str = ""
    seed: int = 0
    validation: ValidationSpec = ValidationSpec()
    budget: Budget = Budget()
    scheduler: SchedulerSpec = SchedulerSpec()
    resources: Resources = Resources()
    estimator: Mapping[str, Any] = field(default_factory=dict)
    produce: Mapping[str, Any] = field(default_factory=dict)
    finetune: Mapping[str, Any] = field(default_factory=dict)
    engine: str | None = None

    @property
    def stages(self) -> tuple[str, ...]:
        return stages_for([p.name for p in self.params])

    def grid_trials(self) -> int:
        n = self.budget.num_samples
        for p in self.params:
            n *= p.grid_size()
        return n

    def estimator_config(self, values: Mapping[str, Any] | None = None, **run: Any):
        """The trial's EstimatorTrainConfig: the embedded preset (no held-out rows: the
        validation faces score the trial), the file's `estimator:` fields, then `values`."""
        from swiftavatar.estimator.config import EstimatorTrainConfig

        base = EstimatorTrainConfig.embedded(val_fraction=0.0, progress=False,
                                             keep_checkpoints=1).to_dict()
        base.update({"epochs": self.budget.epochs, "data": run.pop("data", "-"),
                     "out": run.pop("out", "-")})
        for k, v in self.estimator.items():
            base[k] = {**base[k], **v} if k == "model" and isinstance(v, Mapping) else v
        for name, v in (values or {}).items():
            if name.startswith("estimator."):
                base[name.split(".", 1)[1]] = v
        base.update(run)
        return EstimatorTrainConfig.from_dict(base)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "seed": self.seed,
                "data": {"pairs": self.pairs, "renders": self.renders,
                         **({"engine": self.engine} if self.engine else {})},
                "params": {p.name: p.to_dict() for p in self.params},
                "validation": dataclasses.asdict(self.validation),
                "budget": dataclasses.asdict(self.budget),
                "scheduler": dataclasses.asdict(self.scheduler),
                "resources": dataclasses.asdict(self.resources),
                "estimator": dict(self.estimator), "produce": dict(self.produce),
                "finetune": dict(self.finetune)}

    def fingerprint(self) -> str:
        """What a resumed sweep must repeat (the description may change)."""
        d = {k: v for k, v in self.to_dict().items() if k != "description"}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


_TOP = ("name", "description", "seed", "data", "params", "validation", "budget", "scheduler",
        "resources", "estimator", "produce", "finetune")


def _mapping(where: str, raw: Any) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SweepError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
    return raw


def _section(where: str, raw: Any, cls: type) -> Any:
    """A frozen dataclass from a mapping; unknown keys and wrong types name `where.key`."""
    raw = _mapping(where, raw)
    names = [f.name for f in fields(cls)]
    kw: dict[str, Any] = {}
    for k, v in raw.items():
        if k not in names:
            raise SweepError(f"{where}.{k}: unknown field{did_you_mean(str(k), names)}; "
                             f"fields: {', '.join(names)}")
        default = getattr(cls(), k)
        if default is not None and v is not None:
            want = type(default)
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) if want is float \
                else isinstance(v, want) and not (want is int and isinstance(v, bool))
            if not ok:
                raise SweepError(f"{where}.{k}: expected {want.__name__}, got {v!r}")
            v = float(v) if want is float else v
        kw[k] = v
    return cls(**kw)


def _check_fields(where: str, raw: Mapping[str, Any], allowed: list[str]) -> dict[str, Any]:
    for k in raw:
        if k not in allowed:
            raise SweepError(f"{where}.{k}: unknown field{did_you_mean(str(k), allowed)}")
    return dict(raw)


def spec_from_dict(raw: Any, source: str = "sweep file") -> SweepSpec:
    """Validate a parsed sweep file; every error names its `section.field`."""
    from swiftavatar.production.config import ProduceConfig
    from swiftavatar.estimator.config import EstimatorTrainConfig
    from swiftavatar.training.gan_config import GanTrainConfig

    raw = _mapping(source, raw)
    for k in raw:
        if k not in _TOP:
            raise SweepError(f"{k}: unknown section{did_you_mean(str(k), _TOP)}; sections: "
                             f"{', '.join(_TOP)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise SweepError(f"name: expected a non-empty name of letters, digits, '-' and '_' "
                         f"(the experiment directory), got {name!r}")
    data = _check_fields("data", _mapping("data", raw.get("data")),
                         ["pairs", "renders", "engine"])
    if not isinstance(data.get("pairs"), str) or not data["pairs"]:
        raise SweepError("data.pairs: name the paired dataset directory trials start from "
                         "(`swiftavatar produce` or `swiftavatar demo` writes one)")
    engine = data.get("engine")
    if engine is not None:
        from swiftavatar.engines.registry import UnknownEngineError, check_engine_spec

        if not isinstance(engine, str) or not engine:
            raise SweepError(f"data.engine: expected an engine name, 'module:attr' or "
                             f"grpc://HOST:PORT, got {engine!r}")
        try:
            check_engine_spec(engine)
        except UnknownEngineError as e:
            raise SweepError(f"data.engine: {e}") from None
    params_raw = _mapping("params", raw.get("params"))
    if not params_raw:
        raise SweepError("params: name at least one parameter to tune, e.g. "
                         "'estimator.lambda_d: {grid: [3, 10, 30]}'")
    params = tuple(parse_param(str(k), v) for k, v in params_raw.items())
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
        raise SweepError(f"seed: expected an integer in 0..2**31-1, got {seed!r}")
    est_fields = [f.name for f in fields(EstimatorTrainConfig) if f.name not in _ESTIMATOR_FIXED]
    prod_fields = [f for f in ProduceConfig.field_names() if f not in ("out", "engine")]
    gan_fields = [f.name for f in fields(GanTrainConfig) if f.name not in ("out", "domain")]
    spec = SweepSpec(
        name=name, pairs=data["pairs"], renders=data.get("renders"), engine=engine,
        params=params,
        description=str(raw.get("description") or ""), seed=seed,
        validation=_section("validation", raw.get("validation"), ValidationSpec),
        budget=_section("budget", raw.get("budget"), Budget),
        scheduler=_section("scheduler", raw.get("scheduler"), SchedulerSpec),
        resources=_section("resources", raw.get("resources"), Resources),
        estimator=_check_fields("estimator", _mapping("estimator", raw.get("estimator")),
                                est_fields),
        produce=_check_fields("produce", _mapping("produce", raw.get("produce")), prod_fields),
        finetune=_check_fields("finetune", _mapping("finetune", raw.get("finetune")),
                               gan_fields))
    _check_values(spec)
    return spec


def _check_values(spec: SweepSpec) -> None:
    """Budget, scheduler and resources ranges; every parameter's extreme values (and the
    base configs) through the stage config's own checks."""
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.evaluation import EVAL_SEED
    from swiftavatar.production.inversion_config import InversionConfig
    from swiftavatar.training.gan_config import GanTrainConfig

    b, s, r, v = spec.budget, spec.scheduler, spec.resources, spec.validation
    checks = [(b.epochs >= 1, "budget.epochs", "must be >= 1"),
              (b.num_samples >= 1, "budget.num_samples", "must be >= 1"),
              (b.max_concurrent_trials >= 1, "budget.max_concurrent_trials", "must be >= 1"),
              (b.time_budget_s is None or b.time_budget_s > 0, "budget.time_budget_s",
               "must be > 0 (or null: no limit)"),
              (b.max_failures >= 0, "budget.max_failures", "must be >= 0"),
              (s.type in ("asha", "fifo"), "scheduler.type", "must be 'asha' or 'fifo'"),
              (1 <= s.grace_period <= b.epochs, "scheduler.grace_period",
               f"must be in 1..budget.epochs ({b.epochs})"),
              (s.reduction_factor > 1, "scheduler.reduction_factor", "must be > 1"),
              (r.trial_cpus > 0, "resources.trial_cpus", "must be > 0 (Tune refuses 0; 0.1 "
               "is enough for a function that waits on its trainer)"),
              (r.stage_cpus > 0, "resources.stage_cpus", "must be > 0"),
              (v.seed != EVAL_SEED, "validation.seed", f"must not be the test set's seed "
               f"{EVAL_SEED}: a sweep must not tune on the test faces"),
              (v.count >= 1, "validation.count", "must be >= 1"),
              (16 <= v.size <= 1024, "validation.size", "must be in 16..1024 px")]
    for ok, where, msg in checks:
        if not ok:
            raise SweepError(f"{where} {msg}")
    bad = [b for b in spec.estimator_config(data="-", out="-").problems()
           if b[0] not in ("data", "out")]
    if bad:
        raise SweepError(f"estimator.{bad[0][0]} {bad[0][1]}")
    names = [p.name for p in spec.params]
    for p in spec.params:
        for value in p.extremes():
            where = f"params.{p.name} = {value!r}"
            if p.namespace == "estimator":
                bad = spec.estimator_config({p.name: value}, data="-", out="-").problems()
                bad = [b for b in bad if b[0] not in ("data", "out")]
                if bad:
                    raise SweepError(f"{where}: {bad[0][0]} {bad[0][1]}")
            elif p.namespace == "augment":
                try:
                    AugmentConfig(1, {p.field: value})
                except ValueError as e:
                    raise SweepError(f"{where}: {e}") from None
            elif p.namespace == "inversion":
                try:
                    InversionConfig(**{p.field: value})
                except (ValueError, TypeError) as e:
                    raise SweepError(f"{where}: {e}") from None
            else:
                cfg = GanTrainConfig.from_dict({"domain": "avatar", "out": "-", "init": "-",
                                                "data": "-", **spec.finetune, p.field: value})
                if cfg.problems():
                    raise SweepError(f"{where}: {' '.join(cfg.problems()[0])}")
    if FINETUNE in spec.stages and not spec.renders:
        raise SweepError(f"data.renders: finetune.* parameters ({', '.join(names)}) finetune "
                         f"G_avatar on engine renders: name a `swiftavatar render` directory")
    if PRODUCE in spec.stages and spec.produce.get("count", 1) < 1:
        raise SweepError("produce.count must be >= 1")


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (YAML). A bare name (e.g. 'embedded') is looked up among
    the files shipped in this package."""
    import yaml

    p = Path(path)
    if not p.is_file() and not p.suffix:
        shipped = Path(__file__).parent / f"{p.name}.yaml"
        p = shipped if shipped.is_file() else p
    if not p.is_file():
        shipped = sorted(f.stem for f in Path(__file__).parent.glob("*.yaml"))
        raise SweepError(f"no such sweep file {path}; shipped sweeps: {', '.join(shipped)}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise SweepError(f"{p}: not valid YAML ({' '.join(str(e).split())})") from None
    return spec_from_dict(raw, str(p))


__all__ = ["Budget", "METRIC", "MODE", "Resources", "SchedulerSpec", "SweepSpec", "TIME_ATTR",
           "VAL_SEED", "ValidationSpec", "load_sweep", "spec_from_dict"]
