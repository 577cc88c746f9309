"""Training of the dual-domain generators (paper section 3.1, Eq. 1-3) and its checkpoints.

`gan_config` (GanTrainConfig), `gan_steps` (the per-step math), `gan_loop` (GanTrainer and the
Ray Train worker function), `gan_data` (Parquet images through Ray Data), `checkpoint`
(self-describing checkpoints, `load_generator`), `samples` (sample grids). Importing the package
imports neither torch nor Ray (Ray Data tasks that decode images import only `gan_data`); the
names below load their module on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CheckpointError": "swiftavatar.training.checkpoint",
    "find_checkpoint": "swiftavatar.training.checkpoint",
    "load_generator": "swiftavatar.training.checkpoint",
    "read_checkpoint": "swiftavatar.training.checkpoint",
    "GanTrainConfig": "swiftavatar.training.gan_config",
    "GanTrainer": "swiftavatar.training.gan_loop",
    "train_loop_per_worker": "swiftavatar.training.gan_loop",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'swiftavatar.training' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
