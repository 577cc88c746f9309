"""The engine interface checks its inputs and an engine's output with named errors, not
`assert`s (which `python -O` removes)."""
from __future__ import annotations

import numpy as np
import pytest

from engines_for_tests import SquaresEngine
from swiftavatar.engines.base import RenderOutput
from swiftavatar.engines.schema import InvalidVectorError, VectorBatch
from swiftavatar.engines.toon_schema import SCHEMA, ToonParams


def test_render_output_names_a_bad_images_or_masks_array():
    with pytest.raises(ValueError, match=r"images must be an \(N, H, W, 3\) uint8 array, got "
                                         r"ndarray of shape \(2, 8, 8\)"):
        RenderOutput(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="images must be .* float32"):
        RenderOutput(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"masks must be an \(N, H, W\) uint8 array matching "
                                         r"images \(2, 8, 8\), got shape \(2, 8, 9\)"):
        RenderOutput(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 9), np.uint8))
    assert len(RenderOutput(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8), np.uint8))) == 2


class ShortEngine(SquaresEngine):
    """Returns one image fewer than it was given vectors."""

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        out = super()._render(batch, size)
        return RenderOutput(out.images[1:], None)


def test_an_engine_returning_the_wrong_images_is_named():
    engine = ShortEngine()
    default = engine.schema.default_vector()
    batch = VectorBatch(engine.schema, np.repeat(default.continuous[None], 3, axis=0),
                        np.repeat(default.discrete[None], 3, axis=0))
    with pytest.raises(ValueError, match=r"engine 'squares' returned 2 images of 16x16 px for 3 "
                                         r"vectors at 16 px"):
        engine.render(batch, 16)


def test_toon_params_name_a_vector_of_the_wrong_length():
    c = np.full(len(SCHEMA.continuous), 0.5, np.float32)
    d = np.zeros(len(SCHEMA.discrete), np.int64)
    assert ToonParams.read(c, d).d["hair_style"] == SCHEMA.param("hair_style").options[0]
    with pytest.raises(InvalidVectorError, match=f"a toon vector has {len(c)} continuous "
                                                 r"values, got an array of shape \(3,\)"):
        ToonParams.read(c[:3], d)
    with pytest.raises(InvalidVectorError, match=f"a toon vector has {len(d)} discrete values"):
        ToonParams.read(c, d[None])
