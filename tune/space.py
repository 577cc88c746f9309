"""Sweep parameters: what a sweep file may tune, how each value is drawn, and which stages a
parameter forces a trial to run.

A parameter is named `<namespace>.<field>`:
* `estimator.<field>`: the avatar estimator (Eq. 8: lambda_c, lambda_d, the SCE alpha / beta;
  also the optimiser). Stage: train only.
* `augment.<part>`: lambda_aug of one semantic part (Eq. 7). Stages: re-augment the stored W+
  latents with G_real, then train.
* `inversion.<field>`: the inversion weights lambda_p / lambda_i / lambda_l (Eq. 5) and its
  steps. Stages: produce pairs again (small count), then train.
* `finetune.<field>`: G_avatar finetuning (lambda_color of Eq. 2-3). Stages: finetune G_avatar,
  produce pairs with it, then train.

A value is a number (fixed) or a one-key mapping: {grid: [...]} (every value, crossed with
the other grids), {choice: [...]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]} or
{randint: [lo, hi]} (hi excluded), sampled `num_samples` times.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Mapping

from swiftavatar.semantics import CLASSES

TRAIN, AUGMENT, PRODUCE, FINETUNE = "train", "augment", "produce", "finetune"
STAGE_ORDER = (FINETUNE, PRODUCE, AUGMENT, TRAIN)

# namespace -> (the stage it starts from, the fields a sweep may set)
TUNABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "estimator": (TRAIN, ("lambda_c", "lambda_d", "sce_alpha", "sce_beta", "rce_log_zero",
                          "lr", "lr_gamma", "lr_step_epochs", "weight_decay", "batch",
                          "shift_px", "color_jitter", "seed")),
    "augment": (AUGMENT, tuple(CLASSES)),
    "inversion": (PRODUCE, ("lambda_p", "lambda_i", "lambda_l", "steps", "lr")),
    "finetune": (FINETUNE, ("lambda_color", "color_temperature", "lr", "steps")),
}
INT_FIELDS = {"estimator.lr_step_epochs", "estimator.batch", "estimator.shift_px",
              "estimator.seed", "inversion.steps", "finetune.steps"}
KINDS = ("grid", "choice", "uniform", "loguniform", "randint")


class SweepError(ValueError):
    """A sweep file (or what it asks of the cluster) cannot be used; the message names the
    field and says what to write instead."""


def did_you_mean(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Param:
    """One tuned parameter: `name` namespace.field, `kind` 'fixed' or one of KINDS."""

    name: str
    kind: str
    args: tuple[Any, ...]

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def field(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def stage(self) -> str:
        return TUNABLE[self.namespace][0]

    @property
    def log_scale(self) -> bool:
        return self.kind == "loguniform"

    def extremes(self) -> list[Any]:
        """Values to check against the stage config: every listed value, or the range ends."""
        if self.kind in ("grid", "choice", "fixed"):
            return list(self.args)
        lo, hi = self.args
        return [lo, hi - 1] if self.kind == "randint" else [lo, hi]

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "fixed":
            return self.args[0]
        return {"grid": lambda: tune.grid_search(list(self.args)),
                "choice": lambda: tune.choice(list(self.args)),
                "uniform": lambda: tune.uniform(*self.args),
                "loguniform": lambda: tune.loguniform(*self.args),
                "randint": lambda: tune.randint(*self.args)}[self.kind]()

    def grid_size(self) -> int:
        return len(self.args) if self.kind == "grid" else 1

    def to_dict(self) -> Any:
        return self.args[0] if self.kind == "fixed" else {self.kind: list(self.args)}


def _number(where: str, v: Any, integer: bool) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SweepError(f"{where}: expected a number, got {v!r}")
    if integer and int(v) != v:
        raise SweepError(f"{where}: expected an integer, got {v!r}")
    return int(v) if integer else float(v)


def parse_param(name: str, raw: Any) -> Param:
    """A Param from its sweep-file entry; errors name `params.<name>`."""
    where = f"params.{name}"
    ns, dot, fld = str(name).partition(".")
    if not dot or ns not in TUNABLE:
        raise SweepError(f"{where}: a parameter is named <namespace>.<field> with namespace one "
                         f"of {sorted(TUNABLE)}{did_you_mean(ns, sorted(TUNABLE))}")
    fields = TUNABLE[ns][1]
    if fld not in fields:
        raise SweepError(f"{where}: {ns} has no tunable field {fld!r}"
                         f"{did_you_mean(fld, fields)}; tunable: {', '.join(fields)}")
    integer = name in INT_FIELDS
    if not isinstance(raw, Mapping):
        return Param(name, "fixed", (_number(where, raw, integer),))
    if len(raw) != 1 or next(iter(raw)) not in KINDS:
        raise SweepError(f"{where}: write a number or one of {{{', '.join(KINDS)}}}: "
                         f"[values], got keys {sorted(map(str, raw))}")
    kind, values = next(iter(raw.items()))
    if not isinstance(values, (list, tuple)) or not values:
        raise SweepError(f"{where}.{kind}: expected a non-empty list, got {values!r}")
    nums = tuple(_number(f"{where}.{kind}", v, integer or kind == "randint") for v in values)
    if kind in ("uniform", "loguniform", "randint"):
        if len(nums) != 2 or not nums[0] < nums[1]:
            raise SweepError(f"{where}.{kind}: expected [low, high] with low < high, got "
                             f"{list(values)}")
        if kind == "loguniform" and nums[0] <= 0:
            raise SweepError(f"{where}.loguniform: low must be > 0, got {nums[0]}")
    return Param(name, kind, nums)


def stages_for(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The stages a trial that sets these parameters runs, in order. Finetuning G_avatar
    invalidates the pairs (produce again); producing pairs includes their augmentation."""
    touched = {TUNABLE[n.split(".", 1)[0]][0] for n in names}
    if FINETUNE in touched:
        touched.add(PRODUCE)
    if PRODUCE in touched:
        touched.discard(AUGMENT)        # production augments with the trial's lambdas
    touched.add(TRAIN)
    return tuple(s for s in STAGE_ORDER if s in touched)


def flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial config {namespace: {field: value}} -> {namespace.field: value}."""
    return {f"{ns}.{k}": v for ns, sub in config.items() if isinstance(sub, Mapping)
            for k, v in sub.items()}


def nest(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, v in values.items():
        ns, _, fld = name.partition(".")
        out.setdefault(ns, {})[fld] = v
    return out


def param_space(params: tuple[Param, ...]) -> dict[str, dict[str, Any]]:
    """Tune's param_space, nested by namespace."""
    return nest({p.name: p.to_tune() for p in params})


__all__ = ["AUGMENT", "FINETUNE", "KINDS", "PRODUCE", "Param", "STAGE_ORDER", "SweepError",
           "TRAIN", "TUNABLE", "did_you_mean", "flatten", "nest", "param_space", "parse_param",
           "stages_for"]
