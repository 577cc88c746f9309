"""Export an avatar estimator to ONNX, for ONNX Runtime on the CPU (`onnx_runtime.OnnxEstimator`).

The exported graph is `optimize_for_inference(model)` (BatchNorm folded) from its input to its
outputs, so everything `AvatarEstimator.forward` does is in it: the [-1, 1] -> [0, 1] shift, the
crop's colour normalisation (`color_norm`), the trunk's mean/std scaling, the trunk, the heads
and the sigmoid of the continuous head. What stays outside, in torch for both runtimes, is
`prepare_images` (uint8 -> resized float in [-1, 1]), so the two see the same input.

Graph: input `images` (N, 3, S, S) float32 in [-1, 1], N dynamic; outputs `cont` (N, n_c)
(left out when the model has no continuous parameter) and `logits_0` .. `logits_{k-1}`, one
(N, K_j) tensor per discrete parameter. The exporter is `torch.onnx.export` (the default, the
torch.export-based one) at opset OPSET. The checkpoint's identity is in the model's metadata
(METADATA_PREFIX + key): format, model_args (config, input size, colour norm, head sizes),
the engine schema and its fingerprint, the checkpoint file's sha256, the output layout and
what exported it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from swiftavatar import atomic
from swiftavatar.estimator.model import AvatarEstimator, optimize_for_inference

ONNX_FORMAT = "swiftavatar.estimator.onnx.v1"
OPSET = 20
INPUT_NAME = "images"
METADATA_PREFIX = "swiftavatar."


def output_names(n_continuous: int, num_options: tuple[int, ...] | list[int]) -> list[str]:
    """The graph's output names, in order."""
    return (["cont"] if n_continuous else []) + [f"logits_{j}" for j in range(len(num_options))]


class _Flat(nn.Module):
    """The estimator with its outputs as a flat tuple (ONNX outputs are tensors, not a dict)."""

    def __init__(self, model: AvatarEstimator) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(images)
        return ((out["cont"],) if self.model.n_continuous else ()) + tuple(out["logits"])


def onnx_metadata(model: AvatarEstimator, schema, checkpoint_sha256: str | None) -> dict[str, str]:
    """The identity written into the ONNX file (all values strings, keys without the prefix)."""
    args = model.constructor_args()
    return {
        "format": ONNX_FORMAT,
        "model_args": json.dumps(args, sort_keys=True),
        "input_size": str(model.config.input_size),
        "color_norm": model.config.color_norm,
        "engine_schema": schema.to_json(),
        "schema_fingerprint": schema.fingerprint,
        "checkpoint_sha256": checkpoint_sha256 or "",
        "outputs": json.dumps({"names": output_names(model.n_continuous, model.num_options),
                               "n_continuous": model.n_continuous,
                               "num_options": list(model.num_options)}),
        "exporter": f"torch {torch.__version__} torch.onnx.export opset {OPSET}",
    }


def export_onnx(model: AvatarEstimator, schema, path: str | Path, *,
                checkpoint_sha256: str | None = None) -> Path:
    """Write `model` (any AvatarEstimator; BatchNorm is folded here, on a CPU copy) as ONNX to
    `path`, atomically (a failed export leaves no file). Returns the path."""
    import onnx

    fast = optimize_for_inference(model).to("cpu", memory_format=torch.contiguous_format)
    flat = _Flat(fast).eval()
    size = model.config.input_size
    example = torch.zeros(2, 3, size, size)          # 2, not 1: keeps the batch axis symbolic
    names = output_names(model.n_continuous, model.num_options)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    program = torch.onnx.export(flat, (example,), None, input_names=[INPUT_NAME],
                                output_names=names, opset_version=OPSET, dynamo=True,
                                dynamic_shapes={"images": {0: batch}}, verbose=False)
    proto = program.model_proto
    meta = onnx_metadata(model, schema, checkpoint_sha256)
    onnx.helper.set_model_props(proto, {METADATA_PREFIX + k: v for k, v in meta.items()})
    proto.doc_string = (f"SwiftAvatar estimator for engine {schema.engine!r} "
                        f"(schema {schema.version}, {schema.fingerprint})")
    atomic.write_bytes(path, proto.SerializeToString())
    return Path(path)


def read_metadata(props: Mapping[str, str]) -> dict[str, Any]:
    """The identity of an exported estimator from its metadata map (the prefix removed, JSON
    values parsed); {} when the file carries none."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith(METADATA_PREFIX):
            k = key[len(METADATA_PREFIX):]
            out[k] = json.loads(value) if k in ("model_args", "outputs") else value
    return out


__all__ = ["INPUT_NAME", "METADATA_PREFIX", "ONNX_FORMAT", "OPSET", "export_onnx",
           "onnx_metadata", "output_names", "read_metadata"]
