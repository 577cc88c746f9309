"""The paired-data production config: what defines a dataset's rows and how to run the stage.
Inversion (Eq. 4-5) and augmentation (Eq. 7) settings nest as their own configs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from swiftavatar.production.augment import AugmentConfig
from swiftavatar.production.inversion_config import InversionConfig

# Eq. 5's segmentation weight for engines that render masks: with it the inverted layout (a
# hat, glasses, long hair) is the engine's, so a frozen-shape G_avatar hands it to G_real.
# Measured on 48 toon renders (50 steps, G_avatar finetuned with the shape path frozen):
# hat carried into the realistic face 0.00 -> 0.83, mask IoU 0.28 -> 0.65 (README table).
LAMBDA_S_MASKS = 0.1

# A dataset card written before the inversion and augmentation settings nested holds them as
# flat fields (sweep files' `produce:` sections still may): flat name -> (nested config, field)
FLAT_FIELDS = {"steps": ("inversion", "steps"), "lr": ("inversion", "lr"),
               "lambda_p": ("inversion", "lambda_p"), "lambda_i": ("inversion", "lambda_i"),
               "lambda_l": ("inversion", "lambda_l"), "lambda_s": ("inversion", "lambda_s"),
               "lambda_c": ("inversion", "lambda_c"), "n_mean": ("inversion", "n_mean"),
               "augmentations": ("augment", "num_augmentations"),
               "lambda_aug": ("augment", "lambdas")}


def produce_inversion(**overrides: Any) -> InversionConfig:
    """InversionConfig with production's defaults: the paper's Eq. 5 (InversionConfig's own
    defaults), plus the cross-domain colour term (lambda_c 1) and the segmentation term picked
    per engine (lambda_s None: LAMBDA_S_MASKS for an engine that renders masks, else 0)."""
    return InversionConfig(**{"lambda_s": None, "lambda_c": 1.0, **overrides})


@dataclass(frozen=True)
class ProduceConfig:
    """Paired-data production. Defaults are section 4's (InversionConfig, AugmentConfig): 200
    inversion steps, lambdas (LPIPS 1, MSE 0.1, latent 1), 10 augmentations with lambda_aug
    background 1.0, hair 0.3, eyeglasses 0.06. Fields marked (dataset) define the rows: a
    re-run into the same `out` must repeat them; the rest only say how to run."""

    engine: str  # (dataset) registered name, 'module:attr', or grpc://HOST:PORT
    out: str  # output directory (local path or pyarrow.fs URI)
    g_avatar: str  # (dataset) avatar-domain generator checkpoint (file, dir or run dir)
    g_real: str  # (dataset) realistic-domain generator checkpoint
    count: int = 10_000  # (dataset) samples; paper: 50000 TikTok, 10000 Alter
    seed: int = 0  # (dataset) vector sampling, w~_mean's draws and augmentation noise
    size: int | None = None  # (dataset) render size; None: G_avatar's output size
    shard_size: int = 64  # (dataset) samples per shard file
    prior: dict[str, Any] | str | None = None  # (dataset) Prior.to_dict(), 'suggested', None
    engine_options: dict[str, Any] = field(default_factory=dict)  # (dataset)
    inversion: InversionConfig = field(default_factory=produce_inversion)  # (dataset) Eq. 4-5;
    # n_mean is also the draw count of w_mean / w~_mean (the start codes)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # (dataset) Eq. 7
    init: str = "w_tilde"  # (dataset) start code: 'w_tilde' (modified mean) or 'w_mean'
    max_loss: float | None = None  # (dataset) quality gate on loss_total; None keeps all
    lpips_net: str = "vgg"  # (dataset)
    lpips_backbone: str | None = None  # (dataset) None: search (see swiftavatar.metrics)
    lpips_allow_random: bool = False  # (dataset) tests only: a random trunk if none found
    workers: int = 2  # inversion actors (most at once)
    min_workers: int | None = None  # smallest inversion pool; None: same as workers
    cpus_per_worker: float = 0.5  # fractional: a pool asking for every CPU hangs Ray Data
    gpus_per_worker: float = 0.0  # > 0 only where the cluster has GPUs (fractions allowed)
    batch_size: int = 8  # images inverted together per actor
    render_workers: int = 1  # rendering actors
    render_cpus: float = 0.25
    render_batch: int = 32  # vectors per engine.render call
    max_shards: int | None = None  # produce at most this many missing shards, then stop
    overwrite: bool = False  # delete a dataset already in `out` and start again
    progress: bool = True
    fail_once_marker: str | None = None  # test only: the first inversion call that finds no
    # file at this path creates it and kills its own process (exercises actor restarts)

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable (the nested configs
        check themselves when made)."""
        out: list[tuple[str, str]] = []

        def need(ok: bool, name: str, msg: str) -> None:
            if not ok:
                out.append((name, f"{msg}, got {getattr(self, name)!r}"))

        need(bool(self.engine), "engine", "must name an engine")
        need(bool(self.out), "out", "must name an output directory")
        need(bool(self.g_avatar), "g_avatar", "must name a checkpoint")
        need(bool(self.g_real), "g_real", "must name a checkpoint")
        need(self.count >= 1, "count", "must be >= 1")
        need(0 <= self.seed < 2 ** 32, "seed", "must be in 0..2**32-1")
        need(self.size is None or 16 <= self.size <= 2048, "size", "must be in 16..2048")
        need(self.shard_size >= 1, "shard_size", "must be >= 1")
        need(self.init in ("w_tilde", "w_mean"), "init", "must be 'w_tilde' or 'w_mean'")
        need(self.max_loss is None or self.max_loss > 0, "max_loss", "must be > 0")
        need(self.workers >= 1, "workers", "must be >= 1")
        need(self.min_workers is None or 1 <= self.min_workers <= self.workers, "min_workers",
             f"must be in 1..workers ({self.workers})")
        need(self.cpus_per_worker > 0, "cpus_per_worker", "must be > 0")
        need(self.gpus_per_worker >= 0, "gpus_per_worker", "must be >= 0")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.render_workers >= 1, "render_workers", "must be >= 1")
        need(self.render_cpus > 0, "render_cpus", "must be > 0")
        need(self.render_batch >= 1, "render_batch", "must be >= 1")
        need(self.max_shards is None or self.max_shards >= 1, "max_shards", "must be >= 1")
        return out

    def validate(self) -> None:
        bad = self.problems()
        if bad:
            raise ValueError("; ".join(f"{name} {msg}" for name, msg in bad))

    def resolved_inversion(self, engine_masks: bool) -> InversionConfig:
        """Eq. 5's settings with the segmentation weight resolved for an engine that does
        (`engine_masks`) or does not render masks."""
        if self.inversion.lambda_s is not None:
            return self.inversion
        return dataclasses.replace(self.inversion,
                                   lambda_s=LAMBDA_S_MASKS if engine_masks else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProduceConfig:
        """From `to_dict` (a dataset card's "config"), also one with flat inversion and
        augmentation fields (FLAT_FIELDS: older cards, sweep files), which win over nested."""
        d = dict(d)
        nested: dict[str, dict[str, Any]] = {
            "inversion": dict(d.pop("inversion", None) or {}),
            "augment": dict(d.pop("augment", None) or {})}
        for flat, (which, name) in FLAT_FIELDS.items():
            if flat in d:
                nested[which][name] = d.pop(flat)
        return cls(**d, inversion=produce_inversion(**nested["inversion"]),
                   augment=AugmentConfig(**nested["augment"]))

    @classmethod
    def field_names(cls) -> list[str]:
        """Fields `from_dict` takes: the dataclass fields and the flat FLAT_FIELDS names."""
        return [f.name for f in dataclasses.fields(cls)] + list(FLAT_FIELDS)


__all__ = ["FLAT_FIELDS", "LAMBDA_S_MASKS", "ProduceConfig", "produce_inversion"]
