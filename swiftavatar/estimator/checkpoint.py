"""Self-describing estimator checkpoints.

A checkpoint directory holds `checkpoint.pt` (torch.save of a dict: the model's state dict, the
optimiser's, the model's constructor arguments, the engine schema as JSON, epoch and step, the
whole run config, the trunk's weight record and the epoch's metrics) and `meta.json` (the same
without tensors). Loading uses map_location="cpu" and weights_only=True: tensors and plain
containers only, never code.

Run directory layout (actors.train_estimator and fit_in_process alike):
    config.json                 the run config
    train/checkpoint_00003/     one directory per saved epoch (Ray Train's run directory)
    summary.json                the last run's result
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from swiftavatar import atomic
from swiftavatar.safe_load import safe_torch_load
from swiftavatar.rundir import find_checkpoint_file, list_checkpoint_dirs

from swiftavatar.engines.schema import EngineSchema
from swiftavatar.estimator.model import AvatarEstimator, estimator_from_args

FORMAT = "swiftavatar.estimator.v1"
CHECKPOINT_FILE = "checkpoint.pt"
META_FILE = "meta.json"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
RAY_RUN_NAME = "train"
EXPECTED = ("a SwiftAvatar estimator checkpoint written by `swiftavatar train-estimator` "
            "(a torch.save zip of tensors and plain values)")


class EstimatorCheckpointError(ValueError):
    """A path holds no usable estimator checkpoint; the message says what to pass instead."""


def checkpoint_dir_name(epoch: int) -> str:
    return f"checkpoint_{epoch:05d}"


def make_payload(*, model: AvatarEstimator, optimizer: torch.optim.Optimizer | None,
                 schema: EngineSchema, epoch: int, step: int, run_config: Mapping[str, Any],
                 metrics: Mapping[str, float] | None = None,
                 data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything a restart or a later stage needs, as tensors and plain containers."""
    plain = lambda x: json.loads(json.dumps(x))  # noqa: E731 - plain JSON types only
    return {
        "format": FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "model_args": model.constructor_args(),
        "engine_schema": schema.to_json(),
        "schema_fingerprint": schema.fingerprint,
        "epoch": int(epoch),
        "step": int(step),
        "run_config": plain(dict(run_config)),
        "backbone_info": plain(dict(model.backbone_info)),
        "metrics": plain({k: float(v) for k, v in (metrics or {}).items()}),
        "data": plain(dict(data or {})),
    }


def release_payload(payload: Mapping[str, Any], *, half: bool = True,
                    source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint to ship: the same (config, schema, engine, trunk provenance, run config)
    without the optimiser state; `half` stores the weights as float16 (loaded back into
    float32 modules). `source`: where it came from (plain values, kept under "release").
    Training resumed from it starts a new Adam."""
    from swiftavatar.pretrained import portable

    # no path of the machine it was made on (run config, data, trunk file, source)
    out = {k: (v if k in ("model", "engine_schema") else portable(v))
           for k, v in payload.items() if k not in ("optimizer", "path")}
    out["optimizer"] = None
    if half:
        out["model"] = {k: (v.half() if v.is_floating_point() else v)
                        for k, v in payload["model"].items()}
    out["release"] = {"dtype": "float16" if half else "float32",
                      **portable(json.loads(json.dumps(dict(source or {}))))}
    return out


def meta_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able part of a payload (no state dicts; the schema as a dict)."""
    keys = ("format", "model_args", "schema_fingerprint", "epoch", "step", "run_config",
            "backbone_info", "metrics", "data", "release")
    meta = {k: payload.get(k) for k in keys}
    meta["engine_schema"] = json.loads(payload["engine_schema"])
    return meta


def save_checkpoint(directory: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write checkpoint.pt and meta.json into `directory`, each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic.torch_save(directory / CHECKPOINT_FILE, dict(payload))
    atomic.write_json(directory / META_FILE, meta_of(payload))
    return directory / CHECKPOINT_FILE


def list_checkpoints(run_dir: str | Path) -> dict[int, Path]:
    """{epoch: checkpoint dir} under a run directory (its train/) or a Ray run directory."""
    return list_checkpoint_dirs(run_dir, RAY_RUN_NAME, CHECKPOINT_FILE)


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint file a path names: the file, a checkpoint directory, a run directory
    (its latest checkpoint), or `pretrained:NAME` (an estimator shipped with the project,
    swiftavatar.pretrained: `pretrained:toon`, `pretrained:estimator_toon_64`, ...)."""
    from swiftavatar.pretrained import ESTIMATOR, PREFIX, pretrained_path

    if str(path).startswith(PREFIX):
        try:
            return pretrained_path(str(path)[len(PREFIX):], ESTIMATOR)
        except (KeyError, FileNotFoundError) as err:
            raise EstimatorCheckpointError(str(err.args[0])) from None

    def none_found(msg: str) -> EstimatorCheckpointError:
        return EstimatorCheckpointError(
            msg.replace("checkpoint", "estimator checkpoint", 1)
            + (": train one first" if "holds no" in msg else ""))

    return find_checkpoint_file(path, RAY_RUN_NAME, CHECKPOINT_FILE, none_found)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint payload onto the CPU with weights_only=True ("path" added)."""
    file = find_checkpoint(path)
    payload = safe_torch_load(file, EXPECTED, EstimatorCheckpointError)
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        what = payload.get("format") if isinstance(payload, Mapping) else type(payload).__name__
        raise EstimatorCheckpointError(f"{file}: not an estimator checkpoint (format {what!r}, "
                                       f"expected {FORMAT!r})")
    return {**payload, "path": str(file)}


def model_from_payload(payload: Mapping[str, Any]) -> tuple[AvatarEstimator, EngineSchema]:
    """(estimator with the checkpoint's weights, in eval mode on the CPU, its engine schema)."""
    schema = EngineSchema.from_json(payload["engine_schema"])
    model = estimator_from_args(payload["model_args"])
    model.load_state_dict(payload["model"])
    model.backbone_info = dict(payload.get("backbone_info") or {})
    return model.eval(), schema


def load_estimator(path: str | Path, device: str | torch.device = "cpu"
                   ) -> tuple[AvatarEstimator, EngineSchema, dict[str, Any]]:
    """(model in eval mode on `device`, engine schema, meta) from a checkpoint file, checkpoint
    directory or run directory. meta: epoch, step, run_config, backbone_info, metrics, data,
    model_args, schema_fingerprint, engine_schema (dict) and path."""
    payload = read_checkpoint(path)
    model, schema = model_from_payload(payload)
    meta = meta_of(payload)
    meta["path"] = payload["path"]
    return model.to(device), schema, meta


__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "EstimatorCheckpointError", "FORMAT", "META_FILE",
           "RAY_RUN_NAME", "SUMMARY_FILE", "checkpoint_dir_name", "find_checkpoint",
           "list_checkpoints", "load_estimator", "make_payload", "meta_of",
           "model_from_payload", "read_checkpoint", "release_payload", "save_checkpoint"]
