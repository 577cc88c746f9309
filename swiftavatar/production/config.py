"""The paired-data production config: what defines a dataset's rows and how to run the stage.
Inversion (Eq. 4-5) and augmentation (Eq. 7) settings nest as their own configs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from swiftavatar.config import StageConfig, option
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
class ProduceConfig(StageConfig):
    """Paired-data production. Defaults are section 4's (InversionConfig, AugmentConfig): 200
    inversion steps, lambdas (LPIPS 1, MSE 0.1, latent 1), 10 augmentations with lambda_aug
    background 1.0, hair 0.3, eyeglasses 0.06. Fields marked (dataset) define the rows: a
    re-run into the same `out` must repeat them; the rest only say how to run. The fields
    with a help text are `swiftavatar produce`'s flags (swiftavatar.cli.produce_cmd)."""

    engine: str = option(help="engine name (`swiftavatar engines list`), module:attr, or "
                              "grpc://HOST:PORT")  # (dataset)
    out: str = option(help="output directory (local path or URI)")  # any pyarrow.fs URI
    g_avatar: str = option(  # (dataset) avatar-domain generator checkpoint (file, dir, run dir)
        metavar="CKPT", help="avatar-domain generator: checkpoint file, checkpoint dir, run dir "
                             "or pretrained:NAME (shipped: pretrained:g_avatar_toon_64)")
    g_real: str = option(  # (dataset) realistic-domain generator checkpoint
        metavar="CKPT", help="realistic-domain generator (same W+ layout as --g-avatar), e.g. "
                             "pretrained:g_real_64")
    # (dataset) paper Sec. 4.1: 50000 TikTok, 10000 Alter
    count: int = option(10_000, required=True, help="number of vectors to sample")
    # (dataset) vector sampling, w~_mean's draws and augmentation noise
    seed: int = option(0, help="seed of vector sampling and augmentation noise")
    size: int | None = option(  # (dataset) render size; None: G_avatar's output size
        None, help="render size in pixels (default: G_avatar's output size)")
    shard_size: int = option(64, help="samples per shard")  # (dataset) samples per shard file
    # (dataset) Prior.to_dict(), 'suggested' (the engine's own, recorded resolved) or None
    prior: dict[str, Any] | str | None = option(
        None, metavar="PRIOR.json|suggested",
        help="sampling prior: 'suggested' (the engine's) or a JSON file (see `swiftavatar "
             "render --help`); default uniform")
    engine_options: dict[str, Any] = field(default_factory=dict)  # (dataset) less run_options
    inversion: InversionConfig = field(default_factory=produce_inversion)  # (dataset) Eq. 4-5;
    # n_mean is also the draw count of w_mean / w~_mean (the start codes)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # (dataset) Eq. 7
    init: str = option(  # (dataset) start code: 'w_tilde' (modified mean) or 'w_mean'
        "w_tilde", choices=("w_tilde", "w_mean"),
        help="inversion start code: w~_mean, the mean over samples without glasses (default), "
             "or the checkpoint's w_mean")
    max_loss: float | None = option(  # (dataset) quality gate on loss_total; None keeps all
        None, help="quality gate: drop pairs whose inversion loss_total exceeds this (default: "
                   "keep all)")
    lpips_net: str = option("vgg", choices=("vgg", "alex", "squeeze"),
                            help="LPIPS network")  # (dataset)
    lpips_backbone: str | None = option(  # (dataset) None: search (see swiftavatar.metrics)
        None, metavar="PATH|torchvision|hed",
        help="LPIPS trunk weights (default: torchvision cache, else the offline HED VGG16 "
             "stand-in)")
    lpips_allow_random: bool = False  # (dataset) tests only: a random trunk if none found
    workers: int = option(2, help="inversion actors, most at once")
    min_workers: int | None = option(  # None: same as workers
        None, help="smallest inversion pool; the pool grows onto nodes that join (default: "
                   "--workers)")
    # fractional: a pool asking for every CPU hangs Ray Data
    cpus_per_worker: float = option(0.5, help="CPUs each inversion actor reserves")
    gpus_per_worker: float = option(
        0.0, help="GPUs each inversion actor reserves, fractions allowed (default {default}; > 0 "
                  "only on GPU clusters; actors without CUDA fall back to the CPU)")
    batch_size: int = option(8, help="images inverted together per actor")
    render_workers: int = 1  # rendering actors
    render_cpus: float = 0.25
    render_batch: int = option(32, help="vectors per engine.render call")
    max_shards: int | None = option(
        None, help="produce at most this many missing shards, then stop (re-run for more)")
    overwrite: bool = option(  # delete a dataset already in `out` and start again
        False, help="replace a dataset with a different config already in --out")
    progress: bool = option(True, flag="--no-progress", help="no progress bar")  # tqdm, stderr
    fail_once_marker: str | None = None  # test only: the first inversion call that finds no
    # file at this path creates it and kills its own process (exercises actor restarts)

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable (the nested configs
        check themselves when made)."""
        out: list[tuple[str, str]] = []
        need = self.checker(out)
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

    def resolved_inversion(self, engine_masks: bool) -> InversionConfig:
        """Eq. 5's settings with the segmentation weight resolved for an engine that does
        (`engine_masks`) or does not render masks."""
        if self.inversion.lambda_s is not None:
            return self.inversion
        return dataclasses.replace(self.inversion,
                                   lambda_s=LAMBDA_S_MASKS if engine_masks else 0.0)

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
