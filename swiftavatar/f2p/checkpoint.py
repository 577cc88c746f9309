"""The checkpoint layout of F2P's face-side networks (the face parser, the identity
embedding): a directory holding `checkpoint.pt` (the module's state dict, its constructor
arguments, the run config and the held-out report under a format tag; loaded with
weights_only=True through swiftavatar.safe_load) and `meta.json` (the same without tensors),
each written atomically."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from swiftavatar import atomic
from swiftavatar.config import StageConfig
from swiftavatar.rundir import find_checkpoint_file
from swiftavatar.safe_load import safe_torch_load

CHECKPOINT_FILE = "checkpoint.pt"
META_FILE = "meta.json"


def save_module(directory: str | Path, fmt: str, model: Any, cfg: StageConfig,
                result: dict[str, Any]) -> Path:
    """Write checkpoint.pt and meta.json of `model` (a module with `constructor_args()`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plain = json.loads(json.dumps({"format": fmt, "model_args": model.constructor_args(),
                                   "run_config": cfg.to_dict(), "result": result}))
    tensors = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic.torch_save(directory / CHECKPOINT_FILE, {**plain, "model": tensors})
    atomic.write_json(directory / META_FILE, plain)
    return directory / CHECKPOINT_FILE


def load_module(path: str | Path, fmt: str, what: str, writer: str,
                error: Callable[[str], Exception],
                build: Callable[[Mapping[str, Any]], torch.nn.Module],
                device: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """(module in eval mode on `device`, the checkpoint's plain values) from a checkpoint file
    or the directory holding it; `what` names the network in messages ("face parser"),
    `writer` the function that writes such checkpoints, `error` the exception to raise."""
    file = find_checkpoint_file(path, "train", CHECKPOINT_FILE, lambda msg: error(
        msg.replace(" no checkpoint", f" no {what} checkpoint")))
    a = "an" if what[:1] in "aeiou" else "a"
    payload = safe_torch_load(file, f"{a} {what} checkpoint written by {writer}", error)
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != fmt:
        raise error(f"{file}: not {a} {what} checkpoint (format {found!r}, expected {fmt!r})")
    model = build(payload["model_args"])
    model.load_state_dict(payload["model"])
    meta = {k: v for k, v in payload.items() if k != "model"}
    return model.eval().to(device), {**meta, "path": str(file)}


__all__ = ["CHECKPOINT_FILE", "META_FILE", "load_module", "save_module"]
