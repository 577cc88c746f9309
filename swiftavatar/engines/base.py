"""The engine interface: a non-differentiable black box with a schema and a batched `render`."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from swiftavatar.engines.schema import EngineSchema, Prior, VectorBatch


class EngineError(RuntimeError):
    """An engine could not render (a bad asset, a dead server, ...). The message says why."""


class EngineUnavailableError(EngineError):
    """The engine as a whole cannot render right now (a server down or unreachable, or no
    longer the engine the vectors were made for): no vector is to blame, so callers that route
    failing vectors to an errors table stop instead."""


@dataclass
class RenderOutput:
    """What `Engine.render` returns for N vectors."""

    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    masks: np.ndarray | None = None  # (N, H, W) uint8 class ids in the 13-class layout

    def __post_init__(self) -> None:
        """Checks what an engine's `_render` built: ValueError naming the problem."""
        images, masks = self.images, self.masks
        if not (isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[-1] == 3
                and images.dtype == np.uint8):
            raise ValueError(f"RenderOutput.images must be an (N, H, W, 3) uint8 array, got "
                             f"{type(images).__name__} of shape {np.shape(images)} "
                             f"{getattr(images, 'dtype', '')}")
        if masks is not None and not (isinstance(masks, np.ndarray) and masks.dtype == np.uint8
                                      and masks.shape == images.shape[:3]):
            raise ValueError(f"RenderOutput.masks must be an (N, H, W) uint8 array matching "
                             f"images {images.shape[:3]}, got shape {np.shape(masks)} "
                             f"{getattr(masks, 'dtype', '')}")

    def __len__(self) -> int:
        return self.images.shape[0]


class Engine(abc.ABC):
    """An avatar engine. Subclasses set `name` and implement `schema` and `_render`.

    `render` is batched and deterministic: the same vectors at the same size give the same
    pixels. Engines that can also return a 13-class segmentation set `schema.supports_masks`.
    """

    name: str = "engine"
    default_size: int = 256
    # Constructor options that change how the engine is reached, never its pixels (a server's
    # address, timeouts): a rendered dataset's identity leaves them out, so a resume may change
    # them.
    run_options: frozenset[str] = frozenset()

    @property
    @abc.abstractmethod
    def schema(self) -> EngineSchema: ...

    @abc.abstractmethod
    def _render(self, batch: VectorBatch, size: int) -> RenderOutput: ...

    def render(self, batch: VectorBatch, size: int | None = None) -> RenderOutput:
        size = int(size or self.default_size)
        if size < 16 or size > 2048:
            raise ValueError(f"render size {size} is outside 16..2048 pixels")
        if batch.schema.fingerprint != self.schema.fingerprint:
            raise EngineError(
                f"vectors were made for schema {batch.schema.engine}/{batch.schema.version} "
                f"({batch.schema.fingerprint}) but engine {self.name!r} has "
                f"{self.schema.version} ({self.schema.fingerprint})")
        batch.validate()
        out = self._render(batch, size)
        if len(out) != len(batch) or out.images.shape[1:3] != (size, size):
            raise ValueError(f"engine {self.name!r} returned {len(out)} images of "
                             f"{out.images.shape[1]}x{out.images.shape[2]} px for {len(batch)} "
                             f"vectors at {size} px: _render must return one {size}x{size} "
                             f"image per vector")
        return out

    def suggested_prior(self) -> Prior | None:
        """A sampling prior the engine's author recommends for training data (e.g. one that
        makes 'no hat' as likely as all hats together), or None for uniform. Used with
        `--prior suggested`."""
        return None

    def close(self) -> None:
        """Release resources (connections, processes). Idempotent."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
