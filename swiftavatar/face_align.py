"""Face detection and alignment for real selfies, with mediapipe 0.10.21's BlazeFace.

The estimator learns from head-and-shoulders crops framed like the built-in face domain (and
G_real's output). A selfie is framed any way: this module finds the face with BlazeFace (the
short-range model, then the full-range one), takes four of its keypoints (both eyes, nose tip,
mouth centre) and maps them by a scale and a translation onto TEMPLATE, where BlazeFace finds
them on the built-in domain's own faces, then resamples that square. No rotation: the head's
roll is something the avatar copies (the toon engine's `head_tilt`).

mediapipe is optional (`scripts/bootstrap.sh` installs it; see README): it pins numpy<2 and
protobuf<5 in its metadata but its face detection runs on this project's numpy 2 and protobuf
7, so it is installed with `pip install --no-deps` beside the `faces` extra's packages.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from swiftavatar.selfies import ImageInputError

MEDIAPIPE_VERSION = "0.10.21"
MEDIAPIPE_INSTALL = (f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION} && "
                     f"pip install 'swiftavatar[faces]'")
# Where BlazeFace puts (right eye, left eye, nose tip, mouth centre) on the built-in face
# domain, in units of the square image's side (x right, y down); the subject's right eye is
# on the image's left. Measured on 40 faces at 128 and 256 px (tests/test_face_align.py
# checks it against the domain).
TEMPLATE = np.array([[0.384, 0.432], [0.607, 0.430], [0.496, 0.556], [0.497, 0.666]],
                    np.float64)                                              # (4, 2)
KEYPOINTS = (0, 1, 2, 3)        # BlazeFace's 6 keypoints: eyes, nose tip, mouth, ear tragions
MIN_EYE_DISTANCE = 12.0         # pixels between the eyes, below which a face is too small


class FaceNotFoundError(ImageInputError):
    """No face (or only one too small to use) in an image."""


class FaceDetectorUnavailableError(RuntimeError):
    """mediapipe is not installed."""


def mediapipe_available() -> bool:
    return importlib.util.find_spec("mediapipe") is not None


@dataclass(frozen=True)
class Detection:
    score: float
    box: tuple[float, float, float, float]    # x, y, width, height in pixels
    keypoints: np.ndarray                     # (6, 2) pixels (x, y)


@dataclass(frozen=True)
class Alignment:
    scale: float                 # output pixels per input pixel
    offset: tuple[float, float]  # output = scale * input + offset
    detection: Detection


def fit_scale_offset(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares s, t with dst ~ s * src + t (no rotation). src, dst: (K, 2)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    assert src.shape == dst.shape and src.ndim == 2 and src.shape[1] == 2, (src.shape, dst.shape)
    sc, dc = src - src.mean(0), dst - dst.mean(0)
    denom = float((sc ** 2).sum())
    if denom <= 0:
        raise ValueError("the source points coincide: no scale can be fitted")
    s = float((sc * dc).sum() / denom)
    return s, dst.mean(0) - s * src.mean(0)


def warp_square(img: np.ndarray, scale: float, offset: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3): output pixel (u, v) shows input (u - t) / s. Outside
    the photo is filled with the colour of its border (median), not black."""
    from PIL import Image

    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape, img.dtype)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    fill = tuple(int(v) for v in np.median(border, axis=0))
    inv = 1.0 / scale                       # PIL maps output -> input: x = a u + b v + c
    coeffs = (inv, 0.0, -offset[0] * inv, 0.0, inv, -offset[1] * inv)
    out = Image.fromarray(img).transform((size, size), Image.AFFINE, coeffs,
                                         resample=Image.BICUBIC, fillcolor=fill)
    return np.asarray(out)


@contextlib.contextmanager
def _quiet_stderr():
    """mediapipe's C++ side logs to fd 2 when it starts a graph (TFLite delegate lines, and an
    AttributeError about protobuf's MessageFactory that it catches itself): hide those. One
    line its inference thread writes later ("Feedback manager requires ...") still shows."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class FaceAligner:
    """BlazeFace detection + alignment onto TEMPLATE. Use as a context manager (or close())."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        if not 0.0 < min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in (0, 1), got {min_confidence}")
        if not mediapipe_available():
            raise FaceDetectorUnavailableError(
                f"face detection needs mediapipe {MEDIAPIPE_VERSION}: {MEDIAPIPE_INSTALL} "
                f"(or give centred head crops and --align none)")
        with _quiet_stderr():
            from mediapipe.python.solutions import face_detection

            self._models = [face_detection.FaceDetection(model_selection=m,
                                                         min_detection_confidence=min_confidence)
                            for m in (0, 1)]               # short range, then full range
        self.min_confidence = min_confidence

    def close(self) -> None:
        for m in self._models:
            m.close()
        self._models = []

    def __enter__(self) -> "FaceAligner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, img: np.ndarray) -> Detection | None:
        """The most confident face of the first model that finds one, or None."""
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape,
                                                                              img.dtype)
        h, w = img.shape[:2]
        rgb = np.ascontiguousarray(img)
        for model in self._models:
            with _quiet_stderr():
                found = model.process(rgb).detections or []
            if not found:
                continue
            best = max(found, key=lambda d: d.score[0])
            b = best.location_data.relative_bounding_box
            kp = np.array([[k.x * w, k.y * h] for k in best.location_data.relative_keypoints],
                          np.float64)                                        # (6, 2)
            return Detection(float(best.score[0]),
                             (b.xmin * w, b.ymin * h, b.width * w, b.height * h), kp)
        return None

    def align(self, img: np.ndarray, size: int, name: str = "image"
              ) -> tuple[np.ndarray, Alignment]:
        """(H, W, 3) uint8 photo -> ((size, size, 3) uint8 crop framed like the face domain,
        the alignment). Raises FaceNotFoundError naming `name`."""
        det = self.detect(img)
        if det is None:
            raise FaceNotFoundError(
                f"{name}: no face found (BlazeFace, confidence >= {self.min_confidence}); give "
                f"a photo with one face looking at the camera, or, for an image that is "
                f"already a centred head crop, --align none")
        eyes = float(np.linalg.norm(det.keypoints[0] - det.keypoints[1]))
        if eyes < MIN_EYE_DISTANCE:
            raise FaceNotFoundError(
                f"{name}: the face found is too small ({eyes:.0f} px between the eyes, need "
                f"{MIN_EYE_DISTANCE:.0f}); give a closer or larger photo")
        s, t = fit_scale_offset(det.keypoints[list(KEYPOINTS)], TEMPLATE * size)
        return warp_square(img, s, t, size), Alignment(s, (float(t[0]), float(t[1])), det)


__all__ = ["Alignment", "Detection", "FaceAligner", "FaceDetectorUnavailableError",
           "FaceNotFoundError", "KEYPOINTS", "MEDIAPIPE_INSTALL", "MEDIAPIPE_VERSION",
           "TEMPLATE", "fit_scale_offset", "mediapipe_available", "warp_square"]
