"""Sampling priors over an engine's parameter space (uniform, or re-weighted per option)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from swiftavatar.engines.params import DiscreteParam, SchemaError

if TYPE_CHECKING:  # annotations only
    from swiftavatar.engines.schema import EngineSchema


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
        width = self.normal_width
        if not (isinstance(width, (int, float, np.floating)) and math.isfinite(width)
                and width >= 0):
            raise SchemaError(f"prior: normal_width must be a finite number >= 0 (a fraction "
                              f"of each range), got {self.normal_width!r}")
        names = {p.name: p for p in schema.discrete}
        for name, weights in self.discrete_weights.items():
            if name not in names:
                raise SchemaError(f"prior: {name!r} is not a discrete parameter of "
                                  f"{schema.engine!r}")
            for label, w in weights.items():
                names[name].index(label)
                if not (isinstance(w, (int, float, np.integer, np.floating)) and w >= 0
                        and math.isfinite(w)):
                    raise SchemaError(f"prior: weight for {name}={label!r} must be >= 0, "
                                      f"got {w!r}")
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
