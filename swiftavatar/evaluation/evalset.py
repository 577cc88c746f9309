"""The held-out evaluation set: procedural faces no training stage sees, with designer vectors.

It stands in for the paper's 116 FFHQ photos with designer-made avatar vectors (Sec. 4.2).
Faces come from `render_faces(seed, ids)`; face i of a seed depends only on (seed, i), so a seed
that no training stage uses gives faces no training stage has seen. Training stages default to
seed 0; `EvalSet.check_disjoint` guards a run's actual seeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from swiftavatar.engines.schema import EngineSchema, VectorBatch
from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.config import FaceDomainConfig

if TYPE_CHECKING:
    from swiftavatar.engines.base import Engine
    from swiftavatar.faces.procedural import FaceBatch

EVAL_SEED = 20230207           # used by no training stage (they default to 0)
PAPER_COUNT = 116              # faces in the paper's evaluation set
# The same people under conditions beyond the face domain's training ranges (FaceDomainConfig
# defaults in brackets): stronger head pose (yaw 14, roll 7 deg), light from below and behind
# (elevation -5..55), warmer and colder light with a weaker white balance (3200-7500 K, 0.75),
# over- and under-exposure (0.85-1.15), more defocus (0-0.006) and sensor noise
# (0.003-0.025), harsher JPEG (40-95). Blur and noise lie wholly outside; the rest mostly.
SHIFTED_CONDITIONS = FaceDomainConfig(
    yaw_deg=(-24.0, 24.0), roll_deg=(-14.0, 14.0), light_elevation_deg=(-30.0, 75.0),
    light_kelvin=(2400.0, 10000.0), white_balance=0.35, exposure=(0.6, 1.6),
    blur_sigma=(0.006, 0.012), noise_std=(0.025, 0.06), jpeg_quality=(20, 60))


@dataclass(frozen=True)
class EvalSet:
    """Which faces make the evaluation set: `count` faces of `seed` (ids first_id...), rendered
    at `size` px with the face domain `config` (default FaceDomainConfig())."""

    seed: int = EVAL_SEED
    count: int = PAPER_COUNT
    size: int = 128
    first_id: int = 0
    config: FaceDomainConfig | None = field(default=None, compare=True)

    def __post_init__(self) -> None:
        for name in ("seed", "count", "size", "first_id"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"EvalSet.{name} must be an int, got {type(v).__name__} {v!r}")
        if not 0 <= self.seed < 2 ** 31:
            raise ValueError(f"EvalSet.seed must be in 0..2**31-1, got {self.seed}")
        if self.count < 1:
            raise ValueError(f"EvalSet.count must be at least 1, got {self.count}")
        if self.first_id < 0:
            raise ValueError(f"EvalSet.first_id must be >= 0, got {self.first_id}")
        if not 16 <= self.size <= 1024:
            raise ValueError(f"EvalSet.size must be in 16..1024 px, got {self.size}")

    def shifted(self) -> "EvalSet":
        """The same faces (identities, attributes, designer vectors) under
        SHIFTED_CONDITIONS: a robustness set beside this one."""
        from dataclasses import replace

        return replace(self, config=SHIFTED_CONDITIONS)

    @property
    def ids(self) -> range:
        return range(self.first_id, self.first_id + self.count)

    def check_disjoint(self, training_seeds: Iterable[int]) -> None:
        """Raise if a seed the training faces were drawn from is this set's seed."""
        seeds = sorted({int(s) for s in training_seeds})
        if self.seed in seeds:
            raise ValueError(f"the evaluation seed {self.seed} is also a training seed "
                             f"({seeds}): evaluation faces would be training faces; pick "
                             f"another EvalSet(seed=...)")

    def attributes(self) -> list[FaceAttributes]:
        """The faces' attribute records without rendering them (evaluation only)."""
        from swiftavatar.faces.procedural import face_attributes

        return face_attributes(self.seed, self.ids, self.config)

    def faces(self) -> "FaceBatch":
        """Images (N, size, size, 3) uint8, masks and attribute records."""
        from swiftavatar.faces.procedural import render_faces

        return render_faces(self.seed, self.ids, self.size, self.config)

    def designer_vectors(self, schema: EngineSchema | "Engine",
                         attrs: list[FaceAttributes] | None = None) -> VectorBatch:
        """The designer's vector for each face (pass `attrs` to skip re-sampling them)."""
        from swiftavatar.evaluation.designer import design

        schema = schema if isinstance(schema, EngineSchema) else schema.schema
        return design(self.attributes() if attrs is None else attrs, schema)

    def build(self, engine: "Engine | str", faces: "FaceBatch | None" = None) -> "EvalData":
        """Faces plus designer vectors for `engine` (an Engine or a registered engine name).
        Pass `faces` (this set's `faces()`, e.g. from another engine's EvalData) to skip
        rendering them again."""
        if isinstance(engine, str):
            from swiftavatar.engines.registry import get_engine

            engine = get_engine(engine)
        if faces is None:
            faces = self.faces()
        elif (faces.seed, faces.ids, faces.images.shape[1]) != (self.seed, tuple(self.ids),
                                                                 self.size):
            raise ValueError(f"the faces passed to build() are seed {faces.seed}, "
                             f"{len(faces.ids)} ids from {faces.ids[:1]}, "
                             f"{faces.images.shape[1]} px; this EvalSet is seed {self.seed}, "
                             f"ids {self.ids.start}..{self.ids.stop - 1}, {self.size} px")
        return EvalData(self, faces, self.designer_vectors(engine.schema, faces.attributes),
                        engine.name)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "count": self.count, "size": self.size,
                "first_id": self.first_id,
                "config": None if self.config is None else _config_dict(self.config)}


@dataclass(frozen=True)
class EvalData:
    """An evaluation set made concrete for one engine."""

    spec: EvalSet
    faces: "FaceBatch"           # images (N, H, W, 3) uint8, masks, attribute records
    designer: VectorBatch        # (N) designer vectors, schema of `engine`
    engine: str

    def __post_init__(self) -> None:
        assert len(self.faces) == len(self.designer) == self.spec.count, \
            (len(self.faces), len(self.designer), self.spec.count)


def _config_dict(cfg: FaceDomainConfig) -> dict:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


__all__ = ["EVAL_SEED", "EvalData", "EvalSet", "PAPER_COUNT", "SHIFTED_CONDITIONS"]
