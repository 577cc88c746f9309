"""Prediction with a trained estimator: uint8 face images -> valid avatar vectors."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from swiftavatar.engines.schema import EngineSchema, VectorBatch
from swiftavatar.estimator.model import AvatarEstimator, check_schema, decode, prepare_images

if TYPE_CHECKING:
    from swiftavatar.estimator.onnx_runtime import OnnxEstimator


def predict_outputs(model: AvatarEstimator | OnnxEstimator, images: np.ndarray | torch.Tensor,
                    device: str | torch.device = "cpu", batch_size: int = 64) -> dict:
    """Raw outputs {"cont": (N, n_c) in [0, 1], "logits": [(N, K_j)]} on the CPU for images
    (N, H, W, 3) uint8 of any size (resized to the model's input_size). Runs in eval mode
    and no-grad; the model's train/eval mode is restored afterwards. For repeated CPU
    prediction pass the result of `optimize_for_inference(model)`: about 30% faster at
    batch 1. `model` may also be an `onnx_runtime.OnnxEstimator` (CPU only; see
    `runtime.load_runtime`), which gives the same outputs within 1e-4."""
    imgs = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if imgs.ndim == 3:
        raise ValueError(f"images must be a batch (N, H, W, 3); got one image "
                         f"{tuple(imgs.shape)}: add a leading axis")
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != torch.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8 RGB, got {tuple(imgs.shape)} "
                         f"{imgs.dtype}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    layout = _input_layout(model)
    was_training = model.training
    if was_training:                              # toggling walks every module: ~1 ms each way
        model.eval()
    conts, logits = [], [[] for _ in model.num_options]
    try:
        with torch.inference_mode():
            for i in range(0, imgs.shape[0], batch_size):
                x = prepare_images(imgs[i:i + batch_size].to(device), model.config.input_size)
                x = x.contiguous(memory_format=layout)                # (b, 3, S, S)
                out = model(x)
                conts.append(out["cont"].float().cpu())
                for j, lg in enumerate(out["logits"]):
                    logits[j].append(lg.float().cpu())
    finally:
        if was_training:
            model.train()
    n = imgs.shape[0]
    cont = torch.cat(conts) if conts else torch.zeros((0, model.n_continuous))
    return {"cont": cont.reshape(n, model.n_continuous),
            "logits": [torch.cat(lg) if lg else torch.zeros((0, k))
                       for lg, k in zip(logits, model.num_options)]}


def _input_layout(model) -> torch.memory_format:
    """channels_last for a model from optimize_for_inference (its weights are), else the
    plain layout (an OnnxEstimator takes plain NCHW arrays)."""
    trunk = getattr(model, "trunk", None)
    if trunk is None:
        return torch.contiguous_format
    stem = next(p for p in trunk.parameters() if p.ndim == 4)           # the first conv
    return (torch.channels_last if stem.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format)


def predict_images(model: AvatarEstimator | OnnxEstimator, schema: EngineSchema,
                   images: np.ndarray | torch.Tensor, device: str | torch.device = "cpu",
                   batch_size: int = 64, base: VectorBatch | None = None) -> VectorBatch:
    """Avatar vectors for images (N, H, W, 3) uint8 RGB: one row per image, always valid for
    `schema` (argmax per discrete parameter, continuous values clamped into range). The model
    predicts the face parameters; style parameters come from `base` (1 or N vectors) or the
    engine's defaults. The model must already be on `device`."""
    check_schema(model, schema)
    out = predict_outputs(model, images, device, batch_size)
    vec = decode(out, schema, base)
    assert len(vec) == len(images), (len(vec), len(images))
    return vec


__all__ = ["predict_images", "predict_outputs"]
