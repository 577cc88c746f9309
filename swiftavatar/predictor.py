"""The predict pipeline as a library: a photo -> the crop the estimator saw -> an avatar vector
-> a render. `swiftavatar predict`, the check set and the HTTP service all use it.

`AvatarPredictor` is built once from an estimator (a checkpoint path or `pretrained:NAME`), an
engine spec or None, an align mode and a device; it holds three parts that the service runs in
separate deployments and that can be built on their own:

- `FaceFramer`: finds and frames the face like the training faces (mediapipe BlazeFace), or,
  with align "none", centre-crops an image that is already a head crop;
- `LoadedEstimator`: the estimator with BatchNorm folded, crops -> vectors;
- `open_engine`: the engine to render with. The checkpoint's engine must be registered (a file
  never picks code to import or a server to contact); an explicit spec may be anything.

Problems with the model, engine or align mode raise `PredictorError` (a ValueError whose
message names the flag, as the commands print it); a bad photo raises `ImageInputError`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from swiftavatar.selfies import ImageInputError

ALIGN_MODES = ("auto", "mediapipe", "none")


class PredictorError(ValueError):
    """The model, engine or align mode cannot be used; one line naming the flag."""


def resolve_align(align: str, command: str = "predict") -> tuple[str, str | None]:
    """An align mode ("auto", "mediapipe", "none") -> (the mode used, a warning or None).
    auto is mediapipe when it is installed, else none with a warning; mediapipe when it is not
    installed raises PredictorError."""
    from swiftavatar.face_align import MEDIAPIPE_INSTALL, mediapipe_available

    if align not in ALIGN_MODES:
        raise PredictorError(f"--align: {align!r} is not one of {', '.join(ALIGN_MODES)}")
    if align == "auto":
        if mediapipe_available():
            return "mediapipe", None
        return "none", (f"swiftavatar {command}: mediapipe is not installed, so faces are not "
                        f"detected: each image is used as a centred head crop "
                        f"({MEDIAPIPE_INSTALL} adds detection; --align none hides this "
                        f"warning)")
    if align == "mediapipe" and not mediapipe_available():
        raise PredictorError(f"--align mediapipe: mediapipe is not installed: "
                             f"{MEDIAPIPE_INSTALL}")
    return align, None


@dataclass(frozen=True)
class Framed:
    """A photo framed for the estimator: the (S, S, 3) uint8 crop, and the face found (box x,
    y, width, height in the photo's pixels, and BlazeFace's score; None with align none)."""

    crop: np.ndarray
    face_box: tuple[float, float, float, float] | None = None
    face_score: float | None = None


class FaceFramer:
    """Face detection and framing by align mode "mediapipe" or "none" (see resolve_align).
    Use as a context manager (or close())."""

    def __init__(self, align: str, min_face_confidence: float = 0.5) -> None:
        if align not in ("mediapipe", "none"):
            raise PredictorError(f"--align: {align!r} must be resolved to mediapipe or none")
        self.align = align
        self._aligner = None
        if align == "mediapipe":
            from swiftavatar.face_align import FaceAligner

            self._aligner = FaceAligner(min_face_confidence)

    def frame(self, image: np.ndarray, size: int, name: str = "image") -> Framed:
        """(H, W, 3) uint8 photo -> Framed at `size` px. Raises ImageInputError (no face, a
        face too small) naming `name`."""
        from swiftavatar.selfies import center_square, resize_square

        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ImageInputError(f"{name}: expected an (H, W, 3) uint8 RGB image, got "
                                  f"{image.shape} {image.dtype}")
        if self._aligner is None:
            return Framed(resize_square(center_square(image), size))
        crop, how = self._aligner.align(image, size, name=name)
        det = how.detection
        return Framed(crop, tuple(round(v, 1) for v in det.box), round(det.score, 4))

    def close(self) -> None:
        if self._aligner is not None:
            self._aligner.close()
            self._aligner = None

    def __enter__(self) -> "FaceFramer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LoadedEstimator:
    """An estimator checkpoint loaded for inference: crops -> vectors."""

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32,
                 runtime: str = "torch", threads: int = 1) -> None:
        """runtime: torch (BatchNorm folded), onnx (ONNX Runtime on the CPU, the export
        cached by the checkpoint's sha256) or auto (onnx on the CPU where onnxruntime is
        installed); `threads`: ONNX Runtime's intra-op threads (swiftavatar.estimator.runtime)."""
        from swiftavatar.estimator.checkpoint import EstimatorCheckpointError
        from swiftavatar.estimator.onnx_runtime import OnnxModelError
        from swiftavatar.estimator.runtime import load_runtime, pick_runtime

        try:
            pick_runtime(runtime, device)
        except ValueError as err:
            raise PredictorError(f"--runtime: {err}") from None
        try:
            self.model, self.schema, self.meta = load_runtime(model, runtime, device,
                                                              threads=threads)
        except (EstimatorCheckpointError, FileNotFoundError, OnnxModelError) as err:
            raise PredictorError(f"--model: {err}") from None
        self.spec, self.device, self.batch_size = model, device, batch_size
        self.runtime = self.meta["runtime"]

    @property
    def input_size(self) -> int:
        return self.model.config.input_size

    def estimate(self, crops: Sequence[np.ndarray] | np.ndarray, base=None):
        """Crops (N, S, S, 3) uint8 -> VectorBatch (N rows); style parameters from `base` (a
        VectorBatch of 1 or N rows) or the engine's defaults."""
        from swiftavatar.estimator.predict import predict_images

        images = np.stack(list(crops)) if not isinstance(crops, np.ndarray) else crops
        return predict_images(self.model, self.schema, images, self.device, self.batch_size,
                              base=base)


def open_engine(spec: str | None, schema, model_spec: str):
    """The engine to render `schema`'s vectors: `spec` (anything get_engine takes) or, when
    None, the checkpoint's engine by name (registered engines only). Its schema must be the
    estimator's. Raises PredictorError naming --engine."""
    from swiftavatar.engines.registry import (UnknownEngineError, UntrustedEngineError,
                                              get_engine, get_registered_engine)

    try:
        engine = (get_engine(spec) if spec else
                  get_registered_engine(schema.engine, source=f"--model {model_spec}"))
    except UntrustedEngineError as err:
        raise PredictorError(str(err)) from None
    except UnknownEngineError as err:
        if spec:
            raise PredictorError(f"--engine: {err}") from None
        raise PredictorError(f"unknown engine {schema.engine!r} (the estimator's engine is not "
                             f"registered here): pass --engine with the spec its data was "
                             f"rendered with (module:Class, grpc://HOST:PORT or a registered "
                             f"name)") from None
    except (KeyError, ValueError) as err:
        raise PredictorError(f"--engine: {err.args[0] if err.args else err}") from None
    if engine.schema.fingerprint != schema.fingerprint:
        engine.close()
        raise PredictorError(f"--engine: {spec or schema.engine} has schema "
                             f"{engine.schema.fingerprint}, the estimator was trained on "
                             f"{schema.fingerprint} ({schema.engine} {schema.version})")
    return engine


@dataclass(frozen=True)
class PhotoResult:
    """One photo's answer: the vector (a one-row VectorBatch) and the crop, face box and
    score, or the error (a message a person can act on) and nothing else."""

    name: str
    vector: Any = None
    crop: np.ndarray | None = None
    face_box: tuple[float, float, float, float] | None = None
    face_score: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class AvatarPredictor:
    """Estimator + engine + face framing, built once; `predict` photos, `render` vectors.
    `align` is resolved (resolve_align) if "auto". Use as a context manager (or close())."""

    def __init__(self, model: str, engine: str | None = None, align: str = "auto",
                 device: str = "cpu", *, min_face_confidence: float = 0.5,
                 batch_size: int = 32, style=None, runtime: str = "torch") -> None:
        self.align, self.warning = resolve_align(align)
        self.estimator = LoadedEstimator(model, device, batch_size, runtime=runtime)
        self.engine = open_engine(engine, self.estimator.schema, model)
        try:
            self.framer = FaceFramer(self.align, min_face_confidence)
        except BaseException:
            self.engine.close()
            raise
        self.style = style                 # a VectorBatch of style parameters, or None

    @property
    def schema(self):
        return self.estimator.schema

    def frame(self, image: np.ndarray, name: str = "image") -> Framed:
        """One photo framed at the estimator's input size (ImageInputError: no face)."""
        return self.framer.frame(image, self.estimator.input_size, name)

    def predict(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None
                ) -> list[PhotoResult]:
        """(H, W, 3) uint8 photos -> one PhotoResult each, in order; a photo without a usable
        face gets its error, the others their vectors (one forward pass per batch)."""
        names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        framed: list[Framed | str] = []
        for img, name in zip(images, names):
            try:
                framed.append(self.frame(img, name))
            except ImageInputError as err:
                framed.append(str(err))
        good = [f for f in framed if isinstance(f, Framed)]
        vectors = iter(self.estimator.estimate([f.crop for f in good], base=self.style)
                       if good else [])
        out = []
        for name, f in zip(names, framed):
            if isinstance(f, str):
                out.append(PhotoResult(name, error=f))
            else:
                out.append(PhotoResult(name, next(vectors).batch(), f.crop, f.face_box,
                                       f.face_score))
        return out

    def render(self, vector, size: int = 256) -> np.ndarray:
        """A vector (AvatarVector, one-row VectorBatch or {parameter: value}, validated
        against the schema) -> (size, size, 3) uint8."""
        from swiftavatar.engines.vectors import AvatarVector, VectorBatch

        if isinstance(vector, AvatarVector):
            vector = vector.batch()
        elif not isinstance(vector, VectorBatch):
            vector = self.schema.vector(vector).batch()
        return self.engine.render(vector, size).images[0]

    def close(self) -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(self.engine.close)
            stack.callback(self.framer.close)

    def __enter__(self) -> "AvatarPredictor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["ALIGN_MODES", "AvatarPredictor", "FaceFramer", "Framed", "LoadedEstimator",
           "PhotoResult", "PredictorError", "open_engine", "resolve_align"]
