"""The parts of an engine schema that need no schema: parameter types, their checks and the
errors a bad vector or schema raises. `swiftavatar.engines.schema` builds on them, and so do
the vector and prior types (which `schema` re-exports), so this module imports neither.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only
    from swiftavatar.engines.schema import EngineSchema

# What a parameter is for. "face": the estimator predicts it from the photo (shape, colours,
# hair, glasses, beard, headwear). "style": no photo decides it (background, clothing); the
# platform or the user sets it, predictions take the engine default (or a given vector).
ROLES = ("face", "style")


class InvalidVectorError(ValueError):
    """A vector does not fit its engine's schema. The message names the parameter."""


class SchemaError(ValueError):
    """A schema (or prior) definition is itself malformed."""


def _check_role(name: str, role: str) -> None:
    if role not in ROLES:
        raise SchemaError(f"parameter {name!r}: role must be one of {ROLES}, got {role!r}")


@dataclass(frozen=True)
class ContinuousParam:
    name: str
    low: float
    high: float
    default: float
    doc: str = ""
    role: str = "face"               # one of ROLES

    def __post_init__(self) -> None:
        _check_role(self.name, self.role)
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise SchemaError(f"continuous parameter {self.name!r}: need finite low < high, "
                              f"got [{self.low}, {self.high}]")
        if not (self.low <= self.default <= self.high):
            raise SchemaError(f"continuous parameter {self.name!r}: default {self.default} "
                              f"outside [{self.low}, {self.high}]")


@dataclass(frozen=True)
class DiscreteParam:
    name: str
    options: tuple[str, ...]
    default: int = 0
    doc: str = ""
    role: str = "face"               # one of ROLES

    def __post_init__(self) -> None:
        _check_role(self.name, self.role)
        object.__setattr__(self, "options", tuple(self.options))
        if len(self.options) < 1:
            raise SchemaError(f"discrete parameter {self.name!r}: needs at least one option")
        if len(set(self.options)) != len(self.options):
            raise SchemaError(f"discrete parameter {self.name!r}: option labels repeat")
        if not (0 <= self.default < len(self.options)):
            raise SchemaError(f"discrete parameter {self.name!r}: default index {self.default} "
                              f"outside 0..{len(self.options) - 1}")

    def index(self, label: str) -> int:
        try:
            return self.options.index(label)
        except ValueError:
            shown = ", ".join(self.options[:12]) + (", ..." if len(self.options) > 12 else "")
            raise InvalidVectorError(
                f"parameter {self.name!r}: unknown option {label!r}; valid options: {shown}"
            ) from None


def check_continuous(p: ContinuousParam, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise InvalidVectorError(f"parameter {p.name!r}: expected a number in "
                                 f"[{p.low}, {p.high}], got {type(v).__name__} {v!r}")
    try:
        f = float(v)
    except OverflowError:  # an int beyond float range, e.g. from JSON
        raise InvalidVectorError(f"parameter {p.name!r}: value is out of range "
                                 f"[{p.low}, {p.high}] (too large for a float)") from None
    if math.isnan(f):
        raise InvalidVectorError(f"parameter {p.name!r}: value is NaN; give a number in "
                                 f"[{p.low}, {p.high}]")
    if not (p.low <= f <= p.high):
        raise InvalidVectorError(f"parameter {p.name!r}: value {f} is out of range "
                                 f"[{p.low}, {p.high}]")
    return f


def check_discrete(p: DiscreteParam, v: Any) -> int:
    if isinstance(v, str):
        return p.index(v)
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        if 0 <= int(v) < len(p.options):
            return int(v)
        raise InvalidVectorError(f"parameter {p.name!r}: option index {int(v)} is out of range "
                                 f"0..{len(p.options) - 1}")
    raise InvalidVectorError(f"parameter {p.name!r}: expected an option label (one of "
                             f"{len(p.options)}), got {type(v).__name__} {v!r}")


def row_errors(schema: EngineSchema, continuous: np.ndarray, discrete: np.ndarray) -> list[str]:
    """Per-row validation of array-form vectors: '' for a good row, else a message naming the
    first bad parameter. Vectorised; used by the rendering stage to route bad rows."""
    n = continuous.shape[0]
    msgs = [""] * n
    for j, p in enumerate(schema.continuous):
        # Vectors are stored as float32: compare in float32 so that a range end (e.g. 0.9)
        # stays valid after storage.
        col = continuous[:, j].astype(np.float32)
        for r in np.flatnonzero(np.isnan(col)):
            msgs[r] = msgs[r] or f"parameter {p.name!r}: value is NaN"
        bad = ~np.isnan(col) & ((col < np.float32(p.low)) | (col > np.float32(p.high)))
        for r in np.flatnonzero(bad):
            msgs[r] = msgs[r] or (f"parameter {p.name!r}: value {col[r]:.6g} is out of range "
                                  f"[{p.low}, {p.high}]")
    for j, p in enumerate(schema.discrete):
        col = discrete[:, j]
        for r in np.flatnonzero((col < 0) | (col >= len(p.options))):
            msgs[r] = msgs[r] or (f"parameter {p.name!r}: option index {int(col[r])} is out of "
                                  f"range 0..{len(p.options) - 1}")
    return msgs


__all__ = ["ContinuousParam", "DiscreteParam", "InvalidVectorError", "ROLES", "SchemaError",
           "row_errors"]
