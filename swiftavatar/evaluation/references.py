"""Reference rows every evaluation table carries: what a score means without a photo.

* RANDOM: vectors drawn from the engine's prior (its suggested one when it has one), one per
  face: a method that looks at the photo must beat these.
* CONSTANT: one vector for every face, the designer's own most frequent choice per parameter
  (the median for continuous ones) over the evaluated faces: the best a method can do
  without looking, and a strong one when a few options dominate.
Both take the style parameters from the engine's defaults, like every prediction.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from swiftavatar.engines.schema import VectorBatch

if TYPE_CHECKING:
    from swiftavatar.engines.base import Engine

RANDOM = "random prior vectors"
CONSTANT = "constant (designer's mode)"
REFERENCES = (RANDOM, CONSTANT)
RANDOM_SEED = 424_242          # the reference's own draw (no training stage uses it)


def random_vectors(engine: "Engine", n: int, seed: int = RANDOM_SEED) -> VectorBatch:
    """n vectors from the engine's suggested prior (or the uniform one), style from defaults."""
    prior = engine.suggested_prior()
    return engine.schema.sample(seed, range(n), prior).with_style_from(None)


def constant_vectors(designer: VectorBatch) -> VectorBatch:
    """The designer's per-parameter mode (median for continuous), repeated for every row."""
    n = len(designer)
    cont = np.median(designer.continuous, axis=0, keepdims=True)              # (1, n_c)
    disc = np.array([[np.bincount(col).argmax() for col in designer.discrete.T]],
                    np.int64).reshape(1, -1)                                  # (1, n_d)
    one = VectorBatch(designer.schema, cont, disc).with_style_from(None)
    return VectorBatch(designer.schema, np.repeat(one.continuous, n, 0),
                       np.repeat(one.discrete, n, 0))


def reference_vectors(engine: "Engine", designer: VectorBatch) -> dict[str, VectorBatch]:
    """{reference name: vectors, one per designer row}."""
    return {RANDOM: random_vectors(engine, len(designer)), CONSTANT: constant_vectors(designer)}


__all__ = ["CONSTANT", "RANDOM", "REFERENCES", "constant_vectors", "random_vectors",
           "reference_vectors"]
