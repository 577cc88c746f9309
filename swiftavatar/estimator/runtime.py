"""Load an estimator for prediction in the runtime that suits the device: torch
(`optimize_for_inference` of the checkpoint's model) or ONNX Runtime (`OnnxEstimator` over an
export cached by the checkpoint file's sha256).

    model, schema, meta = load_runtime("pretrained:toon", runtime="auto", device="cpu")
    vectors = predict_images(model, schema, images)

"auto" is ONNX Runtime on the CPU when onnxruntime is importable, else torch. The export is
written once into `cache_dir` (default $SWIFTAVATAR_CACHE/onnx, else ~/.cache/swiftavatar/onnx)
as `estimator-<sha256>-opset<N>.onnx`, atomically; a later load with the same checkpoint
reuses it, and a damaged or foreign file there is exported again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from swiftavatar.engines.schema import EngineSchema
from swiftavatar.estimator.checkpoint import find_checkpoint, model_from_payload, \
    read_checkpoint, meta_of
from swiftavatar.estimator.model import optimize_for_inference
from swiftavatar.estimator.onnx_export import OPSET, export_onnx
from swiftavatar.estimator.onnx_runtime import OnnxModelError, OnnxEstimator, \
    onnxruntime_available
from swiftavatar.metrics.vgg_hed import default_cache_dir, file_sha256

RUNTIMES = ("auto", "torch", "onnx")


def pick_runtime(runtime: str, device: str | torch.device) -> str:
    """"torch" or "onnx" for a requested runtime on `device`; ValueError naming the problem
    for ONNX off the CPU or without onnxruntime."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {list(RUNTIMES)}, got {runtime!r}")
    on_cpu = torch.device(device).type == "cpu"
    if runtime == "auto":
        return "onnx" if on_cpu and onnxruntime_available() else "torch"
    if runtime == "onnx" and not on_cpu:
        raise ValueError(f"runtime onnx runs on the CPU only, not on {device}: use runtime "
                         f"torch there (or auto)")
    if runtime == "onnx" and not onnxruntime_available():
        raise ValueError("runtime onnx needs the onnxruntime package: pip install onnxruntime, "
                         "or use runtime torch")
    return runtime


def cached_export_path(sha256: str, cache_dir: str | Path | None = None) -> Path:
    """Where the export of the checkpoint with this sha256 is cached."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "onnx"
    return root / f"estimator-{sha256}-opset{OPSET}.onnx"


def load_runtime(model_spec: str | Path, runtime: str = "auto",
                 device: str | torch.device = "cpu", cache_dir: str | Path | None = None,
                 threads: int = 1) -> tuple[Any, EngineSchema, dict[str, Any]]:
    """(model, engine schema, meta) for `predict_images`. model_spec: what `load_estimator`
    takes (a checkpoint file or directory, a run directory, `pretrained:NAME`). meta is the
    checkpoint's (see load_estimator) plus "runtime" ("torch" or "onnx") and, for ONNX,
    "onnx": {"path", "exported" (whether this call wrote it), "threads"}. `threads`: ONNX
    Runtime intra-op threads (torch keeps its own setting)."""
    chosen = pick_runtime(runtime, device)
    file = find_checkpoint(model_spec)
    payload = read_checkpoint(file)
    meta = {**meta_of(payload), "path": payload["path"], "runtime": chosen}
    if chosen == "torch":
        model, schema = model_from_payload(payload)
        return optimize_for_inference(model.to(device)), schema, meta
    sha = file_sha256(file)
    onnx_file = cached_export_path(sha, cache_dir)
    exported = False
    model = _open_cached(onnx_file, sha, threads)
    if model is None:
        torch_model, schema = model_from_payload(payload)
        export_onnx(torch_model, schema, onnx_file, checkpoint_sha256=sha)
        exported = True
        model = OnnxEstimator(onnx_file, threads)
    meta["onnx"] = {"path": str(onnx_file), "exported": exported, "threads": threads}
    return model, model.schema, meta


def _open_cached(path: Path, sha256: str, threads: int) -> OnnxEstimator | None:
    """The cached export when it is there, readable and made from this checkpoint."""
    if not path.is_file():
        return None
    try:
        model = OnnxEstimator(path, threads)
    except OnnxModelError:
        return None
    return model if model.meta.get("checkpoint_sha256") == sha256 else None


__all__ = ["RUNTIMES", "cached_export_path", "load_runtime", "pick_runtime"]
