"""An exported estimator (`onnx_export`) in an ONNX Runtime session on the CPU.

`OnnxEstimator` answers like `AvatarEstimator.forward`: (N, 3, S, S) float in [-1, 1] ->
{"cont": (N, n_c), "logits": [(N, K_j)]} as CPU torch tensors, and carries the attributes
`predict_outputs` / `predict_images` read (config, n_continuous, num_options, training), so
those functions take either runtime. Session: CPU execution provider, sequential execution,
every graph optimisation, `threads` intra-op threads (default 1: the fastest at batch 1 on
2 cores, see benchmarks/bench_estimator.py) and no spinning of idle threads by default (a
spinning pool takes CPU from everything else on the machine between requests).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from swiftavatar.engines.schema import EngineSchema
from swiftavatar.estimator.model import EstimatorConfig
from swiftavatar.estimator.onnx_export import INPUT_NAME, ONNX_FORMAT, output_names, read_metadata

EXPORT_HINT = "export one with `swiftavatar export-onnx --model SPEC --out FILE.onnx`"


class OnnxModelError(ValueError):
    """A file is not a usable exported estimator; the message says what to do instead."""


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def session_options(threads: int = 1, spinning: bool = False, sequential: bool = True,
                    optimization: str = "all") -> Any:
    """ONNX Runtime SessionOptions: `threads` intra-op threads (0: ONNX Runtime's choice),
    whether idle threads spin, sequential or parallel execution of independent nodes, and the
    graph optimisation level ("disable", "basic", "extended", "all")."""
    import onnxruntime as ort

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise ValueError(f"optimization must be one of {list(levels)}, got {optimization!r}")
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = (ort.ExecutionMode.ORT_SEQUENTIAL if sequential
                         else ort.ExecutionMode.ORT_PARALLEL)
    so.graph_optimization_level = levels[optimization]
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3                       # errors only
    return so


class OnnxEstimator:
    """An exported estimator in an ONNX Runtime CPU session (see the module docstring)."""

    training = False                                # inference only, like an eval() module

    def __init__(self, path: str | Path, threads: int = 1, *, spinning: bool = False,
                 sequential: bool = True, optimization: str = "all") -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"{self.path}: no such file; {EXPORT_HINT}")
        so = session_options(threads, spinning, sequential, optimization)
        try:
            self.session = ort.InferenceSession(str(self.path), so,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:                    # onnxruntime's own exception types
            why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OnnxModelError(f"{self.path}: not a readable ONNX model ({why[:200]}); "
                                 f"{EXPORT_HINT}") from None
        self.meta = _identity(self.path, self.session)
        args = self.meta["model_args"]
        self.config = EstimatorConfig.from_dict(args["config"])
        self.n_continuous = int(args["n_continuous"])
        self.num_options = tuple(int(k) for k in args["num_options"])
        self.schema = EngineSchema.from_json(self.meta["engine_schema"])
        self._names = output_names(self.n_continuous, self.num_options)
        got = [o.name for o in self.session.get_outputs()]
        if got != self._names or [i.name for i in self.session.get_inputs()] != [INPUT_NAME]:
            raise OnnxModelError(f"{self.path}: its inputs/outputs {got} do not match its "
                                 f"metadata; {EXPORT_HINT}")

    def eval(self) -> "OnnxEstimator":
        return self

    def __call__(self, images: torch.Tensor) -> dict[str, Any]:
        """images (N, 3, S, S) float in [-1, 1] -> {"cont": (N, n_c), "logits": [(N, K_j)]}."""
        s = self.config.input_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"the estimator takes (N, 3, {s}, {s}) images, got "
                             f"{tuple(images.shape)}")
        x = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())
        outs = [torch.from_numpy(o) for o in self.session.run(self._names, {INPUT_NAME: x})]
        if self.n_continuous:
            cont, logits = outs[0], outs[1:]
        else:
            cont, logits = torch.zeros((x.shape[0], 0)), outs
        return {"cont": cont, "logits": logits}

    forward = __call__


def _identity(path: Path, session: Any) -> dict[str, Any]:
    """The export's metadata, checked: format, model_args and the engine schema present."""
    props = session.get_modelmeta().custom_metadata_map
    try:
        meta = read_metadata(props)
    except json.JSONDecodeError:
        meta = {}
    if meta.get("format") != ONNX_FORMAT or not isinstance(meta.get("model_args"), dict) \
            or "engine_schema" not in meta:
        what = meta.get("format") or "no SwiftAvatar metadata"
        raise OnnxModelError(f"{path}: an ONNX model, but not an estimator export ({what}; "
                             f"expected {ONNX_FORMAT}); {EXPORT_HINT}")
    return meta


def load_onnx(path: str | Path, threads: int = 1, **options: Any
              ) -> tuple[OnnxEstimator, EngineSchema, dict[str, Any]]:
    """(OnnxEstimator, its engine schema, its metadata) from an exported file."""
    model = OnnxEstimator(path, threads, **options)
    return model, model.schema, dict(model.meta)


__all__ = ["EXPORT_HINT", "OnnxEstimator", "OnnxModelError", "load_onnx",
           "onnxruntime_available", "session_options"]
