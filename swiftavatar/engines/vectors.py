"""Avatar vectors: one validated vector (`AvatarVector`) and a batch in array form
(`VectorBatch`), with the conversions the system needs (JSON, learning arrays and tensors,
Arrow columns). Layout and validation rules live in `swiftavatar.engines.schema`."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from swiftavatar.engines.params import InvalidVectorError, row_errors

if TYPE_CHECKING:  # annotations only
    from swiftavatar.engines.schema import EngineSchema


@dataclass(frozen=True, eq=False)
class AvatarVector:
    """One validated avatar vector: continuous values (n_c,) float32 and option indices
    (n_d,) int64, in schema order. Build with `EngineSchema.vector` or `from_dict`."""

    schema: EngineSchema
    continuous: np.ndarray  # (n_c,) float32, raw engine units
    discrete: np.ndarray  # (n_d,) int64 option indices

    def __post_init__(self) -> None:
        c = np.asarray(self.continuous, dtype=np.float32).reshape(-1)
        d = np.asarray(self.discrete, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "continuous", c)
        object.__setattr__(self, "discrete", d)
        if len(c) != self.schema.n_continuous:
            raise InvalidVectorError(f"wrong length: {len(c)} continuous values, engine "
                                     f"{self.schema.engine!r} has {self.schema.n_continuous}")
        if len(d) != self.schema.n_discrete:
            raise InvalidVectorError(f"wrong length: {len(d)} discrete values, engine "
                                     f"{self.schema.engine!r} has {self.schema.n_discrete}")
        msg = row_errors(self.schema, c[None], d[None])[0]
        if msg:
            raise InvalidVectorError(msg)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AvatarVector)
                and self.schema.fingerprint == other.schema.fingerprint
                and np.array_equal(self.continuous, other.continuous)
                and np.array_equal(self.discrete, other.discrete))

    def __getitem__(self, name: str) -> float | str:
        for i, p in enumerate(self.schema.continuous):
            if p.name == name:
                return float(self.continuous[i])
        for j, p in enumerate(self.schema.discrete):
            if p.name == name:
                return p.options[int(self.discrete[j])]
        self.schema.param(name)  # raises with the known names
        raise AssertionError

    def to_dict(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {p.name: float(self.continuous[i])
                                       for i, p in enumerate(self.schema.continuous)}
        out.update({p.name: p.options[int(self.discrete[j])]
                    for j, p in enumerate(self.schema.discrete)})
        return out

    @classmethod
    def from_dict(cls, schema: EngineSchema, values: Mapping[str, Any]) -> "AvatarVector":
        return schema.vector(values)

    def to_json(self) -> str:
        return json.dumps({"engine": self.schema.engine, "schema_version": self.schema.version,
                           "params": self.to_dict()})

    @classmethod
    def from_json(cls, schema: EngineSchema, s: str | bytes) -> "AvatarVector":
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise InvalidVectorError(f"avatar vector JSON does not parse: {e}") from None
        except RecursionError:
            raise InvalidVectorError("avatar vector JSON is nested too deeply: a vector is "
                                     "one object of parameter values") from None
        if isinstance(d, dict) and "params" in d:
            if d.get("engine", schema.engine) != schema.engine:
                raise InvalidVectorError(f"vector is for engine {d.get('engine')!r}, not "
                                         f"{schema.engine!r}")
            version = d.get("schema_version", schema.version)
            if str(version) != schema.version:
                raise InvalidVectorError(f"vector is for {schema.engine!r} schema version "
                                         f"{version!r}, this engine has {schema.version!r}")
            d = d["params"]
        return schema.vector(d)

    def batch(self) -> "VectorBatch":
        return VectorBatch(self.schema, self.continuous[None], self.discrete[None])


@dataclass(eq=False)
class VectorBatch:
    """N avatar vectors in array form, the unit engines render and learners consume."""

    schema: EngineSchema
    continuous: np.ndarray  # (N, n_c) float32
    discrete: np.ndarray  # (N, n_d) int64

    def __post_init__(self) -> None:
        # Real checks, not asserts (`python -O` drops those): a wrong shape is refused, never
        # reshaped into a different number of rows.
        c = _rows(np.asarray(self.continuous, dtype=np.float32), self.schema.n_continuous,
                  "continuous")
        d = _rows(np.asarray(self.discrete, dtype=np.int64), self.schema.n_discrete, "discrete")
        n = c.shape[0] if c is not None else d.shape[0]
        c = c if c is not None else np.zeros((n, 0), np.float32)
        d = d if d is not None else np.zeros((n, 0), np.int64)
        if c.shape[0] != d.shape[0]:
            raise InvalidVectorError(f"row counts differ: {c.shape[0]} continuous rows, "
                                     f"{d.shape[0]} discrete rows")
        self.continuous, self.discrete = c, d

    def __len__(self) -> int:
        return self.continuous.shape[0]

    def __getitem__(self, i: int) -> AvatarVector:
        return AvatarVector(self.schema, self.continuous[i], self.discrete[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def select(self, rows: Sequence[int] | np.ndarray) -> "VectorBatch":
        rows = np.asarray(rows, dtype=np.int64)
        return VectorBatch(self.schema, self.continuous[rows], self.discrete[rows])

    @classmethod
    def stack(cls, vectors: Sequence[AvatarVector]) -> "VectorBatch":
        if not vectors:
            raise ValueError("cannot stack an empty list of vectors")
        schema = vectors[0].schema
        return cls(schema, np.stack([v.continuous for v in vectors]),
                   np.stack([v.discrete for v in vectors]))

    def validate(self) -> None:
        self.schema.validate_arrays(self.continuous, self.discrete)

    def with_style_from(self, base: "VectorBatch | None" = None) -> "VectorBatch":
        """A copy whose style-role parameters come from `base` (1 or N vectors of the same
        schema) or, without it, from the engine's defaults; face parameters stay."""
        schema, n = self.schema, len(self)
        base = base if base is not None else schema.default_vector().batch()
        if base.schema.fingerprint != schema.fingerprint or len(base) not in (1, n):
            raise InvalidVectorError(f"style vectors must be 1 or {n} vectors of engine "
                                     f"{schema.engine!r}, got {len(base)} of "
                                     f"{base.schema.engine!r}")
        rows = np.zeros(n, np.int64) if len(base) == 1 else np.arange(n)
        cont, disc = self.continuous.copy(), self.discrete.copy()
        for i, p in enumerate(schema.continuous):
            if p.role == "style":
                cont[:, i] = base.continuous[rows, i]
        for j, p in enumerate(schema.discrete):
            if p.role == "style":
                disc[:, j] = base.discrete[rows, j]
        return VectorBatch(schema, cont, disc)

    # ---- learning representation ------------------------------------------------------
    def normalized_continuous(self) -> np.ndarray:
        """(N, n_c) float32 in [0, 1]: (v - low) / (high - low)."""
        low, high = _ranges(self.schema)
        return ((self.continuous - low) / (high - low)).astype(np.float32)

    def onehot(self) -> np.ndarray:
        """(N, onehot_dim) float32: normalised continuous then one-hot per discrete param."""
        parts = [self.normalized_continuous()]
        for j, k in enumerate(self.schema.num_options):
            oh = np.zeros((len(self), k), np.float32)
            oh[np.arange(len(self)), self.discrete[:, j]] = 1.0
            parts.append(oh)
        return np.concatenate(parts, axis=1)

    def to_tensors(self):
        """(continuous (N, n_c) float32 normalised to [0, 1], discrete (N, n_d) int64) tensors."""
        import torch

        return (torch.from_numpy(self.normalized_continuous()),
                torch.from_numpy(self.discrete.copy()))

    @classmethod
    def from_normalized(cls, schema: EngineSchema, cont01: np.ndarray,
                        discrete: np.ndarray) -> "VectorBatch":
        """Inverse of `normalized_continuous`; values are clipped into range so a network's
        output always decodes to a valid vector."""
        low, high = _ranges(schema)
        cont01 = np.asarray(cont01, np.float32)
        if np.isnan(cont01).any():
            col = int(np.argwhere(np.isnan(cont01))[0, -1])
            raise InvalidVectorError(f"parameter {schema.continuous[col].name!r}: the predicted "
                                     f"value is NaN (a diverged model?); nothing to decode")
        cont = low + np.clip(cont01, 0.0, 1.0) * (high - low)
        return cls(schema, np.clip(cont, low, high), np.asarray(discrete, np.int64))

    @classmethod
    def from_onehot(cls, schema: EngineSchema, flat: np.ndarray) -> "VectorBatch":
        """Decode (N, onehot_dim) (one-hot or per-option scores) by argmax per discrete param."""
        flat = np.asarray(flat, np.float32)
        if flat.ndim != 2 or flat.shape[1] != schema.onehot_dim:
            raise InvalidVectorError(f"flat vector has shape {flat.shape}; engine "
                                     f"{schema.engine!r} expects (N, {schema.onehot_dim})")
        nc = schema.n_continuous
        disc = []
        off = nc
        for k in schema.num_options:
            disc.append(flat[:, off:off + k].argmax(axis=1))
            off += k
        d = np.stack(disc, axis=1) if disc else np.zeros((len(flat), 0), np.int64)
        return cls.from_normalized(schema, flat[:, :nc], d)

    # ---- Arrow ------------------------------------------------------------------------
    def to_arrow_columns(self) -> dict[str, Any]:
        """{'c.<name>': float32 array, 'd.<name>': int32 option index array}."""
        import pyarrow as pa

        cols: dict[str, Any] = {}
        for i, p in enumerate(self.schema.continuous):
            cols[f"c.{p.name}"] = pa.array(self.continuous[:, i], type=pa.float32())
        for j, p in enumerate(self.schema.discrete):
            cols[f"d.{p.name}"] = pa.array(self.discrete[:, j].astype(np.int32), type=pa.int32())
        return cols

    def to_columns(self) -> dict[str, np.ndarray]:
        """The same columns as plain numpy arrays (for Ray Data batches)."""
        cols: dict[str, np.ndarray] = {}
        for i, p in enumerate(self.schema.continuous):
            cols[f"c.{p.name}"] = self.continuous[:, i].astype(np.float32)
        for j, p in enumerate(self.schema.discrete):
            cols[f"d.{p.name}"] = self.discrete[:, j].astype(np.int32)
        return cols

    @classmethod
    def from_columns(cls, schema: EngineSchema, cols: Mapping[str, Any]) -> "VectorBatch":
        """Inverse of `to_columns` / `to_arrow_columns` (accepts numpy, Arrow or lists).
        Does not validate: call `validate()` or `row_errors` where rows may be bad."""
        missing = [f"c.{p.name}" for p in schema.continuous if f"c.{p.name}" not in cols]
        missing += [f"d.{p.name}" for p in schema.discrete if f"d.{p.name}" not in cols]
        if missing:
            raise InvalidVectorError(f"vector columns missing for engine {schema.engine!r}: "
                                     f"{', '.join(missing)}")
        cont = [np.asarray(_np(cols[f"c.{p.name}"]), np.float32) for p in schema.continuous]
        disc = [np.asarray(_np(cols[f"d.{p.name}"]), np.int64) for p in schema.discrete]
        n = len(cont[0]) if cont else len(disc[0])
        c = np.stack(cont, axis=1) if cont else np.zeros((n, 0), np.float32)
        d = np.stack(disc, axis=1) if disc else np.zeros((n, 0), np.int64)
        return cls(schema, c, d)


def _rows(a: np.ndarray, width: int, part: str) -> np.ndarray | None:
    """`a` as (N, width): one row of shape (width,) or rows of shape (N, width). None for a
    part the schema does not have (width 0), whose row count comes from the other part."""
    if width == 0:
        if a.size:
            raise InvalidVectorError(f"schema has no {part} parameters, got shape {a.shape}")
        return None
    if a.ndim == 1 and a.size in (0, width):
        return a.reshape(-1, width)
    if a.ndim != 2 or a.shape[1] != width:
        raise InvalidVectorError(f"{part} values have shape {a.shape}, expected (N, {width})")
    return a


def _np(col: Any) -> Any:
    return col.to_numpy(zero_copy_only=False) if hasattr(col, "to_numpy") else col


def _ranges(schema: EngineSchema) -> tuple[np.ndarray, np.ndarray]:
    low = np.array([p.low for p in schema.continuous], np.float32)
    high = np.array([p.high for p in schema.continuous], np.float32)
    return low, high
