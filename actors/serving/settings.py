"""The service's settings (`swiftavatar serve`'s flags, a Serve config file's `args`): models,
where it listens, face framing, batching, replicas and resources per deployment, and the caps
on what a client may send. Plain data: no Ray, no torch."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from swiftavatar.config import StageConfig, option
from swiftavatar.pretrained import PREFIX

ALIGNS = ("mediapipe", "none")
RUNTIMES = ("auto", "torch", "onnx")  # swiftavatar.estimator.runtime.RUNTIMES
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def model_name(spec: str) -> tuple[str, str]:
    """'NAME=SPEC' or SPEC -> (name, spec). Without NAME: a shipped model's name
    (pretrained:toon -> toon), else the checkpoint path's last part."""
    name, eq, rest = spec.partition("=")
    if eq and _NAME.match(name) and rest:
        return name, rest
    if spec.startswith(PREFIX):
        return spec[len(PREFIX):], spec
    return Path(spec.rstrip("/")).name or spec, spec


@dataclass(frozen=True)
class ServeSettings(StageConfig):
    """How `swiftavatar serve` runs (the models come from --model, repeated)."""

    models: tuple[str, ...] = option((), cli=False, flag="--model")
    host: str = option("127.0.0.1", help="interface the HTTP proxy listens on (default "
                                         "{default}, this machine only; 0.0.0.0 listens on "
                                         "every interface, without authentication)")
    port: int = option(8000, help="HTTP port (default {default})")
    align: str = option("mediapipe", choices=ALIGNS,
                        help="mediapipe (default): find and frame the face in each photo; "
                             "none: photos are already centred head crops (a request may ask "
                             "for none too, with its 'align' field)")
    min_face_confidence: float = option(0.5, metavar="P",
                                        help="BlazeFace detection threshold in (0, 1)")
    device: str = option("cpu", help="torch device of the estimator replicas (default "
                                     "{default}; give GPUs with --estimator-gpus too)")
    runtime: str = option("auto", choices=RUNTIMES,
                          help="estimator runtime: auto (default: ONNX Runtime on the CPU, "
                               "2-3x torch at batch 1 in benchmarks/bench_estimator.py; torch "
                               "on a GPU), torch or onnx (CPU only; the export is cached)")
    max_batch_size: int = option(16, help="most crops per estimator forward pass (Serve's "
                                          "dynamic batching; 1 turns it off)")
    batch_wait_ms: float = option(5.0, help="longest wait for a batch to fill, in ms")
    max_ongoing_requests: int = option(64, help="requests in flight per face, estimator or "
                                                "renderer replica (default {default}; the "
                                                "estimator's at least 2x --max-batch-size); "
                                                "give at least the concurrent clients: the "
                                                "rest wait in Serve's router")
    face_replicas: int = option(1, help="face detection replicas (the minimum when "
                                        "autoscaling)")
    estimator_replicas: int = option(1, help="estimator replicas (the minimum when "
                                             "autoscaling)")
    render_replicas: int = option(1, help="engine renderer replicas, one engine each (the "
                                          "minimum when autoscaling)")
    ingress_replicas: int = option(1, help="HTTP ingress replicas (the minimum when "
                                           "autoscaling)")
    max_replicas: int = option(0, help="autoscale every deployment between its replicas and "
                                       "this many (default 0: fixed replica counts)")
    face_cpus: float = option(0.25, help="CPUs per face detection replica")
    estimator_cpus: float = option(0.5, help="CPUs per estimator replica")
    render_cpus: float = option(0.25, help="CPUs per renderer replica")
    ingress_cpus: float = option(0.1, help="CPUs per HTTP ingress replica")
    estimator_gpus: float = option(0.0, help="GPUs per estimator replica (0: CPU)")
    render_gpus: float = option(0.0, help="GPUs per renderer replica")
    max_upload_mb: float = option(10.0, help="largest photo a request may send, in MiB "
                                             "(larger: 413)")
    max_megapixels: float = option(25.0, help="most pixels a photo may have, in millions "
                                              "(larger: 413)")
    max_render_size: int = option(1024, help="largest render a request may ask for, in px")
    render_size: int = option(256, help="render size when a request gives none, in px")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(len(self.models) >= 1, "models", "is required (a checkpoint or pretrained:NAME)")
        names = [model_name(m)[0] for m in self.models]
        need(len(set(names)) == len(names), "models",
             "names a model twice; give NAME=SPEC to tell them apart")
        need(all(_NAME.match(n) for n in names), "models",
             "gives a name that is not letters, digits, '_', '.' or '-'; give NAME=SPEC")
        need(0 <= self.port <= 65535, "port", "must be in 0..65535")
        need(0.0 < self.min_face_confidence < 1.0, "min_face_confidence", "must be in (0, 1)")
        need(self.runtime != "onnx" or self.device == "cpu", "runtime",
             "onnx runs on the CPU only: use --runtime torch (or auto) with a GPU device")
        need(1 <= self.max_batch_size <= 1024, "max_batch_size", "must be in 1..1024")
        need(0.0 <= self.batch_wait_ms <= 10_000, "batch_wait_ms", "must be in 0..10000")
        need(1 <= self.max_ongoing_requests <= 100_000, "max_ongoing_requests",
             "must be in 1..100000")
        replicas = ("face_replicas", "estimator_replicas", "render_replicas", "ingress_replicas")
        for f in replicas:
            need(getattr(self, f) >= 1, f, "must be >= 1")
        need(self.max_replicas == 0
             or self.max_replicas >= max(getattr(self, f) for f in replicas),
             "max_replicas", "must be 0 or at least every deployment's replicas")
        for f in ("face_cpus", "estimator_cpus", "render_cpus", "ingress_cpus"):
            need(0.0 < getattr(self, f) <= 64, f, "must be in (0, 64]")
        for f in ("estimator_gpus", "render_gpus"):
            need(0.0 <= getattr(self, f) <= 8, f, "must be in [0, 8]")
        need(0.001 <= self.max_upload_mb <= 1024, "max_upload_mb", "must be in [0.001, 1024]")
        need(0.001 <= self.max_megapixels <= 400, "max_megapixels", "must be in [0.001, 400]")
        need(16 <= self.max_render_size <= 4096, "max_render_size", "must be in 16..4096")
        need(16 <= self.render_size <= self.max_render_size, "render_size",
             "must be in 16..--max-render-size")
        return out

    @property
    def named_models(self) -> dict[str, str]:
        """{name: checkpoint spec}, in the order given."""
        return dict(model_name(m) for m in self.models)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2 ** 20)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)


__all__ = ["ALIGNS", "ServeSettings", "model_name"]
