"""Engine parameter schemas: the typed description of an avatar vector and its validation.

An avatar engine is a black box that renders a character from an *avatar vector*: a set of
continuous parameters (each in a closed range) and discrete parameters (each one of a list of
option labels). `EngineSchema` describes that space (and serialises to JSON; its fingerprint
names the layout), validates values and arrays (`row_errors`), and samples seeded vectors.
The parameter types live in `swiftavatar.engines.params`, the vector types in
`swiftavatar.engines.vectors`, priors in `swiftavatar.engines.prior`; all are re-exported here.

No torch import at module level: engines and the rendering stage run without it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

# Re-exported: the parameter, vector and prior types are part of this module's public surface.
from swiftavatar.engines.params import (ROLES, ContinuousParam, DiscreteParam, InvalidVectorError,
                                        SchemaError, check_continuous, check_discrete, row_errors)
from swiftavatar.engines.prior import Prior
from swiftavatar.engines.vectors import AvatarVector, VectorBatch

SCHEMA_FORMAT = 1  # bump when the JSON layout of EngineSchema changes


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
    def face_continuous(self) -> tuple[int, ...]:
        """Indices of the continuous parameters with role "face" (the estimator's outputs)."""
        return tuple(i for i, p in enumerate(self.continuous) if p.role == "face")

    @property
    def face_discrete(self) -> tuple[int, ...]:
        """Indices of the discrete parameters with role "face"."""
        return tuple(j for j, p in enumerate(self.discrete) if p.role == "face")

    @property
    def style_names(self) -> list[str]:
        """Names of the parameters with role "style"."""
        return [p.name for p in (*self.continuous, *self.discrete) if p.role == "style"]

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
                {"name": p.name, "low": p.low, "high": p.high, "default": p.default, "doc": p.doc,
                 "role": p.role}
                for p in self.continuous
            ],
            "discrete": [
                {"name": p.name, "options": list(p.options), "default": p.default, "doc": p.doc,
                 "role": p.role}
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
                                    float(p["default"]), str(p.get("doc", "")),
                                    str(p.get("role", "face")))
                    for p in d.get("continuous", [])
                ),
                discrete=tuple(
                    DiscreteParam(str(p["name"]), tuple(str(o) for o in p["options"]),
                                  int(p.get("default", 0)), str(p.get("doc", "")),
                                  str(p.get("role", "face")))
                    for p in d.get("discrete", [])
                ),
            )
        except KeyError as e:
            raise SchemaError(f"schema dict is missing the field {e.args[0]!r}") from None

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_json(cls, s: str) -> "EngineSchema":
        try:
            d = json.loads(s)
        except RecursionError:
            raise SchemaError("schema JSON is nested too deeply") from None
        if not isinstance(d, dict):
            raise SchemaError(f"schema JSON is a {type(d).__name__}, expected an object")
        return cls.from_dict(d)

    @property
    def fingerprint(self) -> str:
        """Short hash of the parameter layout (names, ranges, options): two schemas with the same
        fingerprint decode the same vectors the same way. Docs and roles are not part of it."""
        d = self.to_dict()
        for group in ("continuous", "discrete"):
            for p in d[group]:
                p.pop("doc", None)
                p.pop("role", None)
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
                cont[i] = check_continuous(p, values[p.name])
        for j, p in enumerate(self.discrete):
            if p.name in values:
                disc[j] = check_discrete(p, values[p.name])
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


def iter_param_docs(schema: EngineSchema) -> Iterable[str]:
    """Human-readable lines describing a schema (for `swiftavatar engines describe`)."""
    yield f"engine {schema.engine}  schema {schema.version}  fingerprint {schema.fingerprint}"
    yield f"masks: {'yes (13-class CelebAMask-HQ layout)' if schema.supports_masks else 'no'}"
    yield f"continuous parameters ({schema.n_continuous}):"
    for p in schema.continuous:
        yield (f"  {p.name:<20} {p.role:<5} [{p.low:g}, {p.high:g}] default {p.default:g}  "
               f"{p.doc}").rstrip()
    yield f"discrete parameters ({schema.n_discrete}):"
    for p in schema.discrete:
        opts = ", ".join(p.options)
        yield f"  {p.name:<20} {p.role:<5} {len(p.options)} options: {opts}"


__all__ = ["AvatarVector", "ContinuousParam", "DiscreteParam", "EngineSchema",
           "InvalidVectorError", "Prior", "ROLES", "SchemaError", "VectorBatch",
           "iter_param_docs", "row_errors"]
