"""What the service sends and checks, without Ray: API errors, PNG encoding, the models'
description for clients (enough to build one control per schema parameter)."""
from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np


class ApiError(Exception):
    """A request the client can fix: HTTP `status` and a message saying what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG file bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def png_base64(image: np.ndarray) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def describe_schema(schema: Any) -> list[dict[str, Any]]:
    """Each parameter of an EngineSchema: name, kind (continuous: low, high; discrete:
    options), default (a discrete one's option label), role and doc."""
    out: list[dict[str, Any]] = []
    for p in schema.continuous:
        out.append({"name": p.name, "kind": "continuous", "low": p.low, "high": p.high,
                    "default": p.default, "role": p.role, "doc": p.doc})
    for p in schema.discrete:
        out.append({"name": p.name, "kind": "discrete", "options": list(p.options),
                    "default": p.options[p.default], "role": p.role, "doc": p.doc})
    return out


def describe_model(name: str, schema: Any, input_size: int) -> dict[str, Any]:
    """One served model as GET /v1/models lists it."""
    return {"name": name, "engine": schema.engine, "schema_version": schema.version,
            "schema_fingerprint": schema.fingerprint, "input_size": input_size,
            "parameters": describe_schema(schema)}


def model_identity(info: dict[str, Any]) -> dict[str, Any]:
    """The short form a prediction carries: name, engine, schema version and fingerprint."""
    return {k: info[k] for k in ("name", "engine", "schema_version", "schema_fingerprint")}


__all__ = ["ApiError", "describe_model", "describe_schema", "model_identity", "png_base64",
           "png_bytes"]
