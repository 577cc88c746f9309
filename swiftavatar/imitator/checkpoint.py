"""Self-describing imitator checkpoints, in the estimator's layout.

A checkpoint directory holds `checkpoint.pt` (torch.save of a dict: the imitator's state dict,
the optimiser's, its constructor arguments, the engine schema as JSON, epoch and step, the run
config, the epoch's metrics, a record of the data) and `meta.json` (the same without
tensors). Loading uses map_location="cpu" and weights_only=True (swiftavatar.safe_load).

Run directory (actors.train_imitator):
    config.json                 the run config
    train/checkpoint_00003/     one directory per saved epoch (Ray Train's run directory)
    summary.json                the last run's result and the held-out report
    samples.png                 held-out renders | the imitator's images
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from swiftavatar import atomic
from swiftavatar.engines.schema import EngineSchema
from swiftavatar.imitator.model import Imitator, imitator_from_args
from swiftavatar.rundir import find_checkpoint_file, list_checkpoint_dirs
from swiftavatar.safe_load import safe_torch_load

FORMAT = "swiftavatar.imitator.v1"
CHECKPOINT_FILE = "checkpoint.pt"
META_FILE = "meta.json"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
SAMPLES_FILE = "samples.png"
RAY_RUN_NAME = "train"
EXPECTED = ("an imitator checkpoint written by `swiftavatar train-imitator` (a torch.save zip "
            "of tensors and plain values)")
_META_KEYS = ("format", "model_args", "schema_fingerprint", "epoch", "step", "run_config",
              "metrics", "data")


class ImitatorCheckpointError(ValueError):
    """A path holds no usable imitator checkpoint; the message says what to pass instead."""


def checkpoint_dir_name(epoch: int) -> str:
    return f"checkpoint_{epoch:05d}"


def make_payload(model: Imitator, optimizer: torch.optim.Optimizer | None,
                 schema: EngineSchema, **progress: Any) -> dict[str, Any]:
    """The payload of a checkpoint: the tensors (model, optimizer), the engine schema (JSON
    text) and plain values: constructor args, schema fingerprint, and `progress` (epoch, step,
    run_config, metrics, data), passed through JSON so that only plain types remain."""
    plain = json.loads(json.dumps({"format": FORMAT, "model_args": model.constructor_args(),
                                   "schema_fingerprint": schema.fingerprint, **progress}))
    tensors = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "optimizer": None if optimizer is None else optimizer.state_dict()}
    return {**plain, **tensors, "engine_schema": schema.to_json()}


def save_checkpoint(directory: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write checkpoint.pt and meta.json into `directory`, each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic.torch_save(directory / CHECKPOINT_FILE, dict(payload))
    meta = {k: payload.get(k) for k in _META_KEYS}
    meta["engine_schema"] = json.loads(payload["engine_schema"])
    atomic.write_json(directory / META_FILE, meta)
    return directory / CHECKPOINT_FILE


def list_checkpoints(run_dir: str | Path) -> dict[int, Path]:
    """{epoch: checkpoint dir} under a run directory (its train/) or a Ray run directory."""
    return list_checkpoint_dirs(run_dir, RAY_RUN_NAME, CHECKPOINT_FILE)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The payload of a checkpoint file, checkpoint directory or run directory (its newest),
    on the CPU, with weights_only=True ("path" added)."""
    file = find_checkpoint_file(path, RAY_RUN_NAME, CHECKPOINT_FILE,
                                lambda msg: ImitatorCheckpointError(
                                    msg.replace(" no checkpoint", " no imitator checkpoint")))
    payload = safe_torch_load(file, EXPECTED, ImitatorCheckpointError)
    found = payload.get("format") if isinstance(payload, Mapping) else type(payload).__name__
    if found == FORMAT:
        return {**payload, "path": str(file)}
    raise ImitatorCheckpointError(f"{file}: not an imitator checkpoint (format {found!r}, "
                                  f"expected {FORMAT!r})")


def load_imitator(path: str | Path, device: str | torch.device = "cpu"
                  ) -> tuple[Imitator, EngineSchema, dict[str, Any]]:
    """(imitator in eval mode on `device`, its engine schema, the checkpoint's plain values)."""
    payload = read_checkpoint(path)
    schema = EngineSchema.from_json(payload["engine_schema"])
    model = imitator_from_args(payload["model_args"])
    model.load_state_dict(payload["model"])
    meta = {k: payload.get(k) for k in (*_META_KEYS, "path")}
    return model.eval().to(device), schema, meta


__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "FORMAT", "ImitatorCheckpointError", "META_FILE",
           "RAY_RUN_NAME", "SAMPLES_FILE", "SUMMARY_FILE", "checkpoint_dir_name",
           "list_checkpoints", "load_imitator", "make_payload", "read_checkpoint",
           "save_checkpoint"]
