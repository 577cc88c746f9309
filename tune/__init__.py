"""Hyperparameter sweeps on Ray Tune (Train V2's pattern: a trial function that builds a
`TorchTrainer` and reports through `TuneReportCallback`).

`spec` (sweep files -> SweepSpec), `space` (parameters, search space, stages per parameter),
`stages` (cached dataset stages), `reaugment` (Eq. 7 from stored latents), `validation` (the
per-epoch validation LPIPS hook of the estimator's loop), `trial` (the trial function), `runner`
(Tuner build / restore, run_sweep), `results` (table, best config), `plot`. Sweep files:
tune/*.yaml; see tune/README.md. Importing this package imports neither torch nor Ray.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SweepError": "tune.space", "Param": "tune.space", "stages_for": "tune.space",
    "SweepSpec": "tune.spec", "load_sweep": "tune.spec", "spec_from_dict": "tune.spec",
    "run_sweep": "tune.runner", "build_tuner": "tune.runner", "check_cluster": "tune.runner",
    "SweepPaths": "tune.runner", "prepare_data": "tune.stages",
    "reaugment_pairs": "tune.reaugment", "run_trial": "tune.trial",
    "write_results": "tune.results", "lpips_by_param": "tune.plot",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tune' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
