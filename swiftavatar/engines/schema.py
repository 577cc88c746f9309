"""Engine parameter schemas and avatar vectors.

An avatar engine is a black box that renders a character from an *avatar vector*: a set of
continuous parameters (each in a closed range) and discrete parameters (each one of a list of
option labels). This module holds the typed description of that vector (`EngineSchema`), one
validated vector (`AvatarVector`), a batch of them in array form (`VectorBatch`), the
conversions the rest of the system needs (JSON, learning tensors, Arrow columns) and seeded
sampling with a pluggable prior.

No torch import at module level: engines and the rendering stage run without it. The tensor
conversions import torch lazily.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

SCHEMA_FORMAT = 1  # bump when the JSON layout of EngineSchema changes


class InvalidVectorError(ValueError):
    """A vector does not fit its engine's schema. The message names the parameter."""


class SchemaError(ValueError):
    """A schema (or prior) definition is itself malformed."""


@dataclass(frozen=True)
class ContinuousParam:
    name: str
    low: float
    high: float
    default: float
    doc: str = ""

    def __post_init__(self) -> None:
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

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class EngineSchema:
    """The parameter space of one engine (one version of it)."""

    engine: str
    version: str
    continuous: tuple[ContinuousParam, ...]
    discrete: tuple[DiscreteParam, ...]
    supports_masks: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "continuous", tuple(self.continuous))
        object.__setattr__(self, "discrete", tuple(self.discrete))
        names = [p.name for p in self.continuous] + [p.name for p in self.discrete]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SchemaError(f"schema {self.engine!r}: parameter names repeat: {sorted(dup)}")
        if not names:
            raise SchemaError(f"schema {self.engine!r}: has no parameters")

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_continuous(self) -> int:
        return len(self.continuous)

    @property
    def n_discrete(self) -> int:
        return len(self.discrete)

    @property
    def num_options(self) -> tuple[int, ...]:
        return tuple(len(p.options) for p in self.discrete)

    @property
    def onehot_dim(self) -> int:
        """Length of the flat learning vector: continuous (normalised) + one-hot per discrete."""
        return self.n_continuous + sum(self.num_options)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.continuous] + [p.name for p in self.discrete]

    def param(self, name: str) -> ContinuousParam | DiscreteParam:
        for p in (*self.continuous, *self.discrete):
            if p.name == name:
                return p
        raise InvalidVectorError(f"unknown parameter {name!r} for engine {self.engine!r}; "
                                 f"known: {', '.join(self.param_names)}")

    # ---- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "engine": self.engine,
            "version": self.version,
            "supports_masks": self.supports_masks,
            "continuous": [
                {"name": p.name, "low": p.low, "high": p.high, "default": p.default, "doc": p.doc}
                for p in self.continuous
            ],
            "discrete": [
                {"name": p.name, "options": list(p.options), "default": p.default, "doc": p.doc}
                for p in self.discrete
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EngineSchema":
        try:
            if d.get("format", SCHEMA_FORMAT) != SCHEMA_FORMAT:
                raise SchemaError(f"schema format {d.get('format')} is not supported "
                                  f"(this build reads format {SCHEMA_FORMAT})")
            return cls(
                engine=str(d["engine"]),
                version=str(d["version"]),
                supports_masks=bool(d.get("supports_masks", False)),
                continuous=tuple(
                    ContinuousParam(str(p["name"]), float(p["low"]), float(p["high"]),
                                    float(p["default"]), str(p.get("doc", "")))
                    for p in d.get("continuous", [])
                ),
                discrete=tuple(
                    DiscreteParam(str(p["name"]), tuple(str(o) for o in p["options"]),
                                  int(p.get("default", 0)), str(p.get("doc", "")))
                    for p in d.get("discrete", [])
                ),
            )
        except KeyError as e:
            raise SchemaError(f"schema dict is missing the field {e.args[0]!r}") from None

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_json(cls, s: str) -> "EngineSchema":
        return cls.from_dict(json.loads(s))

    @property
    def fingerprint(self) -> str:
        """Short hash of the parameter layout (names, ranges, options): two schemas with the same
        fingerprint decode the same vectors the same way."""
        d = self.to_dict()
        for group in ("continuous", "discrete"):
            for p in d[group]:
                p.pop("doc", None)
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    # ---- construction and validation ---------------------------------------------------
    def default_vector(self) -> "AvatarVector":
        return AvatarVector(
            self,
            np.array([p.default for p in self.continuous], dtype=np.float32),
            np.array([p.default for p in self.discrete], dtype=np.int64),
        )

    def vector(self, values: Mapping[str, Any], *, fill_defaults: bool = False) -> "AvatarVector":
        """Build a validated vector from {name: value}. Discrete values are option labels
        (or integer indices). Unless `fill_defaults`, every parameter must be given."""
        if not isinstance(values, Mapping):
            raise InvalidVectorError(f"an avatar vector must be a mapping of parameter name to "
                                     f"value, got {type(values).__name__}")
        known = set(self.param_names)
        unknown = [k for k in values if k not in known]
        if unknown:
            raise InvalidVectorError(
                f"unknown parameter {unknown[0]!r} for engine {self.engine!r} "
                f"(schema {self.version}); known: {', '.join(self.param_names)}")
        missing = [n for n in self.param_names if n not in values]
        if missing and not fill_defaults:
            raise InvalidVectorError(f"missing parameter {missing[0]!r} for engine "
                                     f"{self.engine!r} ({len(missing)} missing in all)")
        base = self.default_vector()
        cont = base.continuous.copy()
        disc = base.discrete.copy()
        for i, p in enumerate(self.continuous):
            if p.name in values:
                cont[i] = _check_continuous(p, values[p.name])
        for j, p in enumerate(self.discrete):
            if p.name in values:
                disc[j] = _check_discrete(p, values[p.name])
        return AvatarVector(self, cont, disc)

    def validate_arrays(self, continuous: np.ndarray, discrete: np.ndarray) -> None:
        """Validate a batch in array form: (N, n_c) floats and (N, n_d) indices.
        Raises InvalidVectorError naming the first bad parameter (and row)."""
        continuous = np.asarray(continuous)
        discrete = np.asarray(discrete)
        if continuous.ndim != 2 or continuous.shape[1] != self.n_continuous:
            raise InvalidVectorError(
                f"continuous part has shape {continuous.shape}; engine {self.engine!r} expects "
                f"(N, {self.n_continuous})")
        if discrete.ndim != 2 or discrete.shape[1] != self.n_discrete:
            raise InvalidVectorError(
                f"discrete part has shape {discrete.shape}; engine {self.engine!r} expects "
                f"(N, {self.n_discrete})")
        if continuous.shape[0] != discrete.shape[0]:
            raise InvalidVectorError(f"continuous part has {continuous.shape[0]} rows but discrete "
                                     f"part has {discrete.shape[0]}")
        bad = row_errors(self, continuous, discrete)
        for r, msg in enumerate(bad):
            if msg:
                raise InvalidVectorError(f"row {r}: {msg}")

    # ---- sampling ----------------------------------------------------------------------
    def sample(self, seed: int, ids: Sequence[int] | np.ndarray,
               prior: "Prior | None" = None) -> "VectorBatch":
        """Sample one vector per id. Sample `i` depends only on (seed, i), never on the batch
        it is drawn in, so a sharded or resumed job regenerates exactly the same vectors."""
        prior = prior or Prior()
        prior.check(self)
        ids = np.asarray(ids, dtype=np.int64)
        cont = np.empty((len(ids), self.n_continuous), np.float32)
        disc = np.empty((len(ids), self.n_discrete), np.int64)
        for r, i in enumerate(ids):
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(i)])
            cont[r], disc[r] = prior.draw(self, rng)
        return VectorBatch(self, cont, disc)


def _check_continuous(p: ContinuousParam, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise InvalidVectorError(f"parameter {p.name!r}: expected a number in "
                                 f"[{p.low}, {p.high}], got {type(v).__name__} {v!r}")
    f = float(v)
    if math.isnan(f):
        raise InvalidVectorError(f"parameter {p.name!r}: value is NaN; give a number in "
                                 f"[{p.low}, {p.high}]")
    if not (p.low <= f <= p.high):
        raise InvalidVectorError(f"parameter {p.name!r}: value {f} is out of range "
                                 f"[{p.low}, {p.high}]")
    return f


def _check_discrete(p: DiscreteParam, v: Any) -> int:
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
        if isinstance(d, dict) and "params" in d:
            if d.get("engine", schema.engine) != schema.engine:
                raise InvalidVectorError(f"vector is for engine {d.get('engine')!r}, not "
                                         f"{schema.engine!r}")
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
        nc, nd = self.schema.n_continuous, self.schema.n_discrete
        c = np.asarray(self.continuous, dtype=np.float32)
        d = np.asarray(self.discrete, dtype=np.int64)
        # reshape(-1, 0) is ambiguous: an empty part takes its row count from the other part.
        if nc == 0:
            assert c.size == 0, f"schema has no continuous parameters, got {c.shape}"
            d = d.reshape(-1, nd)
            c = c.reshape(d.shape[0], 0)
        elif nd == 0:
            assert d.size == 0, f"schema has no discrete parameters, got {d.shape}"
            c = c.reshape(-1, nc)
            d = d.reshape(c.shape[0], 0)
        else:
            c, d = c.reshape(-1, nc), d.reshape(-1, nd)
        self.continuous, self.discrete = c, d
        assert self.continuous.shape[0] == self.discrete.shape[0], "row counts differ"

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
        cont = low + np.clip(np.asarray(cont01, np.float32), 0.0, 1.0) * (high - low)
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


def _np(col: Any) -> Any:
    return col.to_numpy(zero_copy_only=False) if hasattr(col, "to_numpy") else col


def _ranges(schema: EngineSchema) -> tuple[np.ndarray, np.ndarray]:
    low = np.array([p.low for p in schema.continuous], np.float32)
    high = np.array([p.high for p in schema.continuous], np.float32)
    return low, high


@dataclass
class Prior:
    """How vectors are sampled. Continuous parameters: 'uniform' over the range (default) or
    'normal' (around the default, sigma = `normal_width` x range, clipped). Discrete: uniform
    unless `discrete_weights[name]` gives a weight per option label (missing labels weigh 1;
    weight 0 never samples that option), which lets a user re-balance long-tail assets."""

    continuous: str = "uniform"
    normal_width: float = 0.2
    discrete_weights: dict[str, dict[str, float]] = field(default_factory=dict)

    def check(self, schema: EngineSchema) -> None:
        if self.continuous not in ("uniform", "normal"):
            raise SchemaError(f"prior: continuous must be 'uniform' or 'normal', "
                              f"got {self.continuous!r}")
        names = {p.name: p for p in schema.discrete}
        for name, weights in self.discrete_weights.items():
            if name not in names:
                raise SchemaError(f"prior: {name!r} is not a discrete parameter of "
                                  f"{schema.engine!r}")
            for label, w in weights.items():
                names[name].index(label)
                if not (w >= 0 and math.isfinite(w)):
                    raise SchemaError(f"prior: weight for {name}={label!r} must be >= 0, got {w}")
            if sum(self._weights(names[name])) <= 0:
                raise SchemaError(f"prior: every option of {name!r} has weight 0")

    def _weights(self, p: DiscreteParam) -> list[float]:
        given = self.discrete_weights.get(p.name, {})
        return [float(given.get(o, 1.0)) for o in p.options]

    def draw(self, schema: EngineSchema, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cont = np.empty(schema.n_continuous, np.float32)
        for i, p in enumerate(schema.continuous):
            if self.continuous == "uniform":
                cont[i] = rng.uniform(p.low, p.high)
            else:
                v = rng.normal(p.default, self.normal_width * (p.high - p.low))
                cont[i] = min(max(v, p.low), p.high)
        disc = np.empty(schema.n_discrete, np.int64)
        for j, p in enumerate(schema.discrete):
            w = np.asarray(self._weights(p))
            disc[j] = rng.choice(len(p.options), p=w / w.sum())
        return cont, disc

    def to_dict(self) -> dict[str, Any]:
        return {"continuous": self.continuous, "normal_width": self.normal_width,
                "discrete_weights": self.discrete_weights}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Prior":
        unknown = set(d) - {"continuous", "normal_width", "discrete_weights"}
        if unknown:
            raise SchemaError(f"prior: unknown field(s) {sorted(unknown)}; known: continuous, "
                              f"normal_width, discrete_weights")
        return cls(continuous=d.get("continuous", "uniform"),
                   normal_width=float(d.get("normal_width", 0.2)),
                   discrete_weights={k: dict(v) for k, v in d.get("discrete_weights", {}).items()})


def iter_param_docs(schema: EngineSchema) -> Iterable[str]:
    """Human-readable lines describing a schema (for `swiftavatar engines describe`)."""
    yield f"engine {schema.engine}  schema {schema.version}  fingerprint {schema.fingerprint}"
    yield f"masks: {'yes (13-class CelebAMask-HQ layout)' if schema.supports_masks else 'no'}"
    yield f"continuous parameters ({schema.n_continuous}):"
    for p in schema.continuous:
        yield f"  {p.name:<20} [{p.low:g}, {p.high:g}] default {p.default:g}  {p.doc}".rstrip()
    yield f"discrete parameters ({schema.n_discrete}):"
    for p in schema.discrete:
        opts = ", ".join(p.options)
        yield f"  {p.name:<20} {len(p.options)} options: {opts}"
