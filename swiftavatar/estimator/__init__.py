"""The avatar estimator (paper section 3.3, Eq. 8): selfie -> avatar vector.

`model` (EstimatorConfig, AvatarEstimator, prepare_images, decode), `weights` (offline ImageNet
trunk weights), `losses` (Eq. 8: L1 + symmetric cross-entropy), `data` (pair / render rows as
training batches, Ray Data and in-memory), `config` (EstimatorTrainConfig), `loop`
(EstimatorTrainer, the Ray Train worker function), `local` (fit_in_process), `checkpoint`
(load_estimator), `release` (release_estimator: float16 files to ship), `predict`
(predict_images), `onnx_export` / `onnx_runtime` (the estimator as ONNX, OnnxEstimator on
ONNX Runtime) and `runtime` (load_runtime: torch or ONNX Runtime, the export cached).
Importing the package imports neither torch nor Ray; the names below load their module on
first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AvatarEstimator": "swiftavatar.estimator.model",
    "EstimatorConfig": "swiftavatar.estimator.model",
    "decode": "swiftavatar.estimator.model",
    "optimize_for_inference": "swiftavatar.estimator.model",
    "prepare_images": "swiftavatar.estimator.model",
    "build_estimator": "swiftavatar.estimator.weights",
    "load_backbone": "swiftavatar.estimator.weights",
    "estimator_loss": "swiftavatar.estimator.losses",
    "symmetric_cross_entropy": "swiftavatar.estimator.losses",
    "EstimatorArrays": "swiftavatar.estimator.data",
    "EstimatorDataError": "swiftavatar.estimator.data",
    "RowFilter": "swiftavatar.estimator.data",
    "build_dataset": "swiftavatar.estimator.data",
    "load_arrays": "swiftavatar.estimator.data",
    "open_source": "swiftavatar.estimator.data",
    "EstimatorTrainConfig": "swiftavatar.estimator.config",
    "EstimatorTrainer": "swiftavatar.estimator.loop",
    "train_loop_per_worker": "swiftavatar.estimator.loop",
    "RunMismatchError": "swiftavatar.estimator.local",
    "fit_in_process": "swiftavatar.estimator.local",
    "EstimatorCheckpointError": "swiftavatar.estimator.checkpoint",
    "find_checkpoint": "swiftavatar.estimator.checkpoint",
    "load_estimator": "swiftavatar.estimator.checkpoint",
    "release_payload": "swiftavatar.estimator.checkpoint",
    "compare_release": "swiftavatar.estimator.release",
    "release_estimator": "swiftavatar.estimator.release",
    "predict_images": "swiftavatar.estimator.predict",
    "predict_outputs": "swiftavatar.estimator.predict",
    "export_onnx": "swiftavatar.estimator.onnx_export",
    "OnnxEstimator": "swiftavatar.estimator.onnx_runtime",
    "OnnxModelError": "swiftavatar.estimator.onnx_runtime",
    "load_runtime": "swiftavatar.estimator.runtime",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'swiftavatar.estimator' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
