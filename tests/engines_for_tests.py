"""A small real engine for tests: draws one coloured shape with numpy.

It lives in an importable module (not in a test file) so Ray workers can rebuild it from the
target 'engines_for_tests:SquaresEngine'. Option "broken" of `shape` makes `render` raise
EngineError for the whole batch: a vector that validates but that the engine cannot render.
"""
from __future__ import annotations

import numpy as np

from swiftavatar import semantics
from swiftavatar.engines.base import Engine, EngineError, RenderOutput
from swiftavatar.engines.schema import ContinuousParam, DiscreteParam, EngineSchema, VectorBatch

TARGET = "engines_for_tests:SquaresEngine"
SHAPES = ("square", "disc", "broken")
BACKGROUNDS = ("light", "dark")
_BG_RGB = {"light": (235, 235, 225), "dark": (30, 30, 40)}


class SquaresEngine(Engine):
    """3 continuous parameters (hue, scale, x offset), 2 discrete (shape, background)."""

    name = "squares"
    default_size = 32

    def __init__(self, masks: bool = True) -> None:
        self._schema = EngineSchema(
            engine="squares",
            version="1",
            continuous=(
                ContinuousParam("hue", 0.0, 1.0, 0.5, "shape colour"),
                ContinuousParam("scale", 0.2, 0.9, 0.5, "shape size, fraction of the image"),
                ContinuousParam("offset_x", -0.2, 0.2, 0.0, "horizontal shift"),
            ),
            discrete=(
                DiscreteParam("shape", SHAPES, 0),
                DiscreteParam("background", BACKGROUNDS, 0),
            ),
            supports_masks=bool(masks),
        )
        self.calls = 0  # number of `_render` calls (the tests count sub-batches)

    @property
    def schema(self) -> EngineSchema:
        return self._schema

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        self.calls += 1
        shape_j = SHAPES.index("broken")
        broken = np.flatnonzero(batch.discrete[:, 0] == shape_j)
        if len(broken):
            raise EngineError(f"shape 'broken' has no asset (batch row {int(broken[0])})")
        n = len(batch)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5  # (H, W) each
        images = np.empty((n, size, size, 3), np.uint8)  # (N, H, W, 3)
        masks = np.zeros((n, size, size), np.uint8)  # (N, H, W)
        for i in range(n):
            hue, scale, off = (float(v) for v in batch.continuous[i])
            shape = SHAPES[int(batch.discrete[i, 0])]
            bg = BACKGROUNDS[int(batch.discrete[i, 1])]
            half = scale / 2
            if shape == "square":
                inside = (np.abs(xx - off) <= half) & (np.abs(yy) <= half)
            else:
                inside = (xx - off) ** 2 + yy ** 2 <= half ** 2
            colour = _hue_rgb(hue)
            images[i] = _BG_RGB[bg]
            images[i][inside] = colour
            masks[i][inside] = semantics.SKIN
        return RenderOutput(images, masks if self._schema.supports_masks else None)


def _hue_rgb(h: float) -> tuple[int, int, int]:
    """A saturated colour on the hue circle, h in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return tuple(int(round(v * 255)) for v in rgb)  # type: ignore[return-value]


class WorkerlessEngine(SquaresEngine):
    """Builds in a driver but not inside a Ray worker: a node that lacks the engine's assets."""

    def __init__(self, **options) -> None:
        import ray

        if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
            raise EngineError("engine assets not found on this node")
        super().__init__(**options)


class DyingHelperEngine(SquaresEngine):
    """An engine whose helper process dies: while the integer in the file `deaths` is above
    0, a `render` call takes one off it and raises BrokenPipeError for the whole batch. The
    count lives in a file so that it spans the driver, Ray actors and fresh engines."""

    def __init__(self, deaths: str, **options) -> None:
        super().__init__(**options)
        self.deaths = deaths

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        with open(self.deaths, "r+") as f:
            left = int(f.read().strip() or 0)
            if left > 0:
                f.seek(0)
                f.truncate()
                f.write(str(left - 1))
        if left > 0:
            raise BrokenPipeError(32, "Broken pipe: the engine's helper process died")
        return super()._render(batch, size)


FLAKY_HUE = 0.7  # FlakyEngine fails vectors with a hue above this while its marker exists


class FlakyEngine(SquaresEngine):
    """While the file `marker` exists, a batch holding a vector with hue > FLAKY_HUE raises
    ValueError (as an engine does for one vector it cannot draw); afterwards it renders them:
    vectors that failed on an earlier run and render on a re-run."""

    def __init__(self, marker: str, **options) -> None:
        super().__init__(**options)
        self.marker = marker

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        import os

        if os.path.exists(self.marker) and (batch.continuous[:, 0] > FLAKY_HUE).any():
            raise ValueError(f"hue above {FLAKY_HUE} has no asset today")
        return super()._render(batch, size)
