"""The service's three deployments, thin adapters over `swiftavatar.predictor`: face framing,
the estimator (Serve's dynamic batching: crops from concurrent requests share one forward
pass) and the engine renderer (one engine per model in each replica). `app.py` gives them
their replicas and resources. A problem the client caused comes back as a message string, not
an exception, so the ingress can answer it with a 4xx."""
from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

import numpy as np
from ray import serve

from actors.serving.payloads import describe_model, png_bytes

# FaceAligner's advice names predict's flag; a client sets the request's field instead
_ALIGN_FLAG, _ALIGN_FIELD = "--align none", "'align': 'none' in the request"


class FaceDeployment:
    """Photo -> Framed (the estimator's crop, face box and score) or an error message."""

    def __init__(self, align: str, min_face_confidence: float) -> None:
        from swiftavatar.predictor import FaceFramer

        self._framers = {"none": FaceFramer("none")}
        if align == "mediapipe":
            self._framers["mediapipe"] = FaceFramer("mediapipe", min_face_confidence)
        self._lock = threading.Lock()        # one mediapipe graph: one photo at a time

    def frame(self, image: np.ndarray, size: int, align: str) -> Any:
        from swiftavatar.selfies import ImageInputError

        framer = self._framers.get(align)
        if framer is None:
            return (f"this server does not detect faces (it was started with --align none): "
                    f"send a centred head crop with 'align': 'none'")
        try:
            with self._lock:
                return framer.frame(image, size, "the photo")
        except ImageInputError as err:
            return str(err).replace(_ALIGN_FLAG, _ALIGN_FIELD)


class EstimatorDeployment:
    """Crop -> avatar vector ({parameter: value}) with the named model; crops of concurrent
    calls are batched (max batch size and wait from the settings)."""

    def __init__(self, models: dict[str, str], device: str, max_batch_size: int,
                 batch_wait_s: float, runtime: str = "torch") -> None:
        from swiftavatar.predictor import LoadedEstimator

        self._models = {name: LoadedEstimator(spec, device, batch_size=max_batch_size,
                                              runtime=runtime)
                        for name, spec in models.items()}
        self.predict_batch.set_max_batch_size(max_batch_size)
        self.predict_batch.set_batch_wait_timeout_s(batch_wait_s)
        self._batches: list[int] = []          # the size of each batch run, for stats()

    def describe(self) -> dict[str, dict[str, Any]]:
        """{name: GET /v1/models' entry plus 'schema' (the schema dict)}."""
        return {name: {**describe_model(name, est.schema, est.input_size),
                       "schema": est.schema.to_dict()} for name, est in self._models.items()}

    async def predict(self, model: str, crop: np.ndarray) -> dict[str, Any]:
        return await self.predict_batch((model, crop))

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def predict_batch(self, items: list[tuple[str, np.ndarray]]) -> list[dict[str, Any]]:
        self._batches.append(len(items))
        # off the replica's event loop: it keeps taking requests (the next batch) meanwhile
        return await asyncio.to_thread(self._estimate, items)

    def _estimate(self, items: list[tuple[str, np.ndarray]]) -> list[dict[str, Any]]:
        by_model: dict[str, list[int]] = defaultdict(list)
        for i, (model, _) in enumerate(items):
            by_model[model].append(i)
        out: list[Any] = [None] * len(items)
        for model, rows in by_model.items():
            vectors = self._models[model].estimate(np.stack([items[i][1] for i in rows]))
            for i, vec in zip(rows, vectors):
                out[i] = vec.to_dict()
        return out

    def stats(self) -> dict[str, Any]:
        """Batches run so far and their mean size (dynamic batching at work)."""
        n = len(self._batches)
        return {"batches": n, "crops": sum(self._batches),
                "mean_batch": sum(self._batches) / n if n else 0.0,
                "max_batch": max(self._batches, default=0)}


class RenderDeployment:
    """(model, vector, size) -> PNG bytes, with one engine per model (the engine the
    checkpoint names, registered engines only); an invalid vector -> its message."""

    def __init__(self, models: dict[str, str]) -> None:
        from swiftavatar.engines.schema import EngineSchema
        from swiftavatar.estimator.checkpoint import read_checkpoint
        from swiftavatar.predictor import open_engine

        self._engines = {}
        for name, spec in models.items():
            schema = EngineSchema.from_json(read_checkpoint(spec)["engine_schema"])
            self._engines[name] = open_engine(None, schema, spec)
        self._lock = threading.Lock()          # engines render one batch at a time

    def render(self, model: str, vector: dict[str, Any], size: int) -> bytes | str:
        from swiftavatar.engines.schema import InvalidVectorError

        engine = self._engines[model]
        try:
            batch = engine.schema.vector(vector).batch()
        except InvalidVectorError as err:
            return str(err)
        with self._lock:
            image = engine.render(batch, size).images[0]
        return png_bytes(image)

    def __del__(self) -> None:
        for engine in getattr(self, "_engines", {}).values():
            engine.close()


__all__ = ["EstimatorDeployment", "FaceDeployment", "RenderDeployment"]
