"""Configuration of the dual-domain generator training (paper section 3.1, Eq. 1-3; section 4).

One config serves both jobs: `domain="real"` pretrains G_real on the realistic face domain
(two-branch image + mask discriminator), `domain="avatar"` finetunes G_avatar from G_real on
engine renders (image-only discriminator, colour matching loss). Defaults are the paper's and
SemanticStyleGAN's settings; the model configs are the embedded CPU ones.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

from swiftavatar.config import StageConfig, need_worker_fields, option
from swiftavatar.models import DiscriminatorConfig, GeneratorConfig
from swiftavatar.semantics import EYEGLASSES, HAIR, HAT, NUM_CLASSES, SKIN
from swiftavatar.training.freeze import FREEZE_MODES
from swiftavatar.training.gan_data import FACE_PRESETS
from swiftavatar.models.losses import (PATH_EVERY, PATH_WEIGHT, R1_EVERY, R1_GAMMA_IMAGE,
                                       R1_GAMMA_SEG)

DOMAINS = ("real", "avatar")
# Steps when `steps` is not given. Avatar: SemanticStyleGAN's adaptation runs about 2000
# iterations. Real: 20k iterations (320k images) for the 64-px embedded generator on procedural
# faces; in a probe it drew heads with coherent hair/skin/neck/cloth masks after about 2.7k
# iterations, and the small parts (eyes, brows, mouth) come later.
DEFAULT_STEPS = {"real": 20_000, "avatar": 2_000}
# SemanticStyleGAN's mask loss weight: 100 when pretraining (train.py), 0 when adapting. With
# the shape path frozen (the avatar default) it stays 100: G_avatar's segmentation then keeps
# describing the shared layout, which the colour loss, a mask discriminator and production's
# correspondence report read.
DEFAULT_LAMBDA_MASK = {"real": 100.0, "avatar": 0.0}
LAMBDA_MASK_FROZEN_SHAPE = 100.0
# What a finetune may change (training/freeze.py). "shape" keeps G_real's layout path: measured
# on the toon engine (500 CPU steps, same z through both generators) it took the mask IoU of
# G_real and G_avatar from 0.24 (shipped, nothing frozen) to 0.94, and made inversion carry
# hats and glasses into the realistic face (with the inversion's segmentation term).
DEFAULT_FREEZE = {"real": "none", "avatar": "shape"}
# Fields that define what a run directory trains; a re-run into the same directory must
# repeat them (everything else, e.g. `steps`, may change between runs).
IDENTITY_FIELDS = ("domain", "generator", "discriminator", "init", "data", "real_count",
                   "real_seed", "seed", "freeze")


def embedded_generator(size: int = 64) -> GeneratorConfig:
    """The embedded generator at 64 or 128 px (16x16 grid, slim render net)."""
    if size == 64:
        return GeneratorConfig.embedded()
    if size == 128:
        return GeneratorConfig.embedded(size=128, render_channels=(128, 64, 32, 16))
    raise ValueError(f"embedded configs exist for 64 and 128 px, got {size}")


def embedded_discriminator(size: int = 64, seg: bool = True) -> DiscriminatorConfig:
    """The embedded discriminator at 64 or 128 px; `seg` adds the mask branch."""
    if size == 64:
        return DiscriminatorConfig.embedded(seg=seg)
    if size == 128:
        return DiscriminatorConfig.embedded(size=128, seg=seg,
                                            channels=(16, 32, 64, 128, 128, 128))
    raise ValueError(f"embedded configs exist for 64 and 128 px, got {size}")


@dataclass(frozen=True)
class GanTrainConfig(StageConfig):
    """One generator training run. `batch` is the global batch, split evenly over workers."""

    domain: str = option("real", choices=DOMAINS, required=True,
                         help="real: pretrain G_real; avatar: finetune G_avatar from --init")
    out: str = option("", metavar="RUNDIR", required=True,  # config.json, samples/, train/
                      help="run directory (created; an existing run there is resumed)")
    data: str | None = option(
        None, metavar="DIR",
        help="avatar: output directory of `swiftavatar render` (required); real: a face folder "
             "(images/ + masks/) or a directory of face shards/*.parquet (default: procedural "
             "faces rendered into RUNDIR/data)")
    init: str | None = option(
        None, metavar="G_REAL_CKPT",
        help="the G_real checkpoint to start from (a checkpoint.pt, a checkpoint directory, a "
             "G_real run directory, or pretrained:g_real_64, the shipped one); required for "
             "avatar; real: finetune that G_real on new faces instead of training one anew "
             "(with --freeze shape the G_avatars made from it keep their correspondence)")
    steps: int | None = option(  # None: DEFAULT_STEPS[domain]
        None, help=f"total training iterations (default: {DEFAULT_STEPS['real']} real, "
                   f"{DEFAULT_STEPS['avatar']} avatar)")
    batch: int = option(16, help="global batch size, split evenly over the workers")  # Sec. 4
    lr: float = option(0.002, help="Adam learning rate")  # as SemanticStyleGAN / StyleGAN2
    betas: tuple[float, float] = (0.0, 0.99)  # before the lazy-regularisation adjustment
    # ---- Eq. 1 ----
    r1_gamma: float = R1_GAMMA_IMAGE     # lambda_R1 on images
    r1_gamma_seg: float = R1_GAMMA_SEG   # on masks (two-branch discriminator only)
    r1_every: int = R1_EVERY             # lazy R1: every 16 D steps
    path_weight: float = PATH_WEIGHT     # lambda_path
    path_every: int = PATH_EVERY         # lazy path length: every 4 G steps
    path_batch_shrink: int = 2           # path length on batch / 2 samples
    path_decay: float = 0.01             # running mean of path lengths
    mixing: float = 0.3                  # style mixing probability
    lambda_mask: float | None = None     # coarse/fine mask agreement; None: DEFAULT_LAMBDA_MASK
    # ---- Eq. 2-3 (avatar only) ----
    lambda_color: float = option(5.0, help="weight of the colour matching loss, Eq. 3 (avatar "
                                           "only; default {default})")
    # not given in the paper; at 5 an error of 0.1 per channel in [-1, 1] over four regions
    # costs 0.6, on the adversarial loss's scale, so colours stay tied
    color_temperature: float = 0.1       # soft region masks: softmax(seg / T)
    color_classes: tuple[int, ...] = (SKIN, HAIR, HAT, EYEGLASSES)  # Eq. 2's regions s
                                         # (paper: hair and skin; a hat's and glasses' colour
                                         # are as visible)
    freeze: str | None = option(
        None, choices=("shape", "none"),
        help="avatar: 'shape' (default) trains only texture and render net, so G_avatar keeps "
             "G_real's layout for every code (hats, glasses and hair stay where G_real puts "
             "them); 'none' finetunes every weight (the paper's setting)")
    # "shape" keeps G_real's layout path: mapping, local layers up to the depth read-out,
    # depth heads (training/freeze.py); None: DEFAULT_FREEZE[domain]
    mask_discriminator: bool | None = option(
        None, choices={"auto": None, "yes": True, "no": False},
        help="avatar: the discriminator also sees the engine's masks; auto (default): when the "
             "renders carry masks")  # None: real yes; avatar yes when the renders carry the
    # engine's masks (decided by actors.train_generator.resolve_config)
    # ---- generator averaging ----
    ema_half_life_images: float = 10_000.0  # StyleGAN2: 10k images
    ema_rampup: float | None = option(  # StyleGAN2-ADA style ramp (half-life <= images*rampup)
        None, metavar="SHARE",
        help="cap G_ema's half-life at SHARE of the images seen (StyleGAN2-ADA's ramp; e.g. "
             "0.05 for a finetune of a few thousand images, where the default 10k-image "
             "half-life leaves G_ema close to its start)")
    # ---- models ----
    generator: GeneratorConfig = option(default_factory=embedded_generator, flag="--size",
                                        cli=False)
    discriminator: DiscriminatorConfig | None = option(None, flag="--size", cli=False)
    # None: embedded, seg = (domain == real)
    # ---- data ----
    hflip: bool = True                   # random horizontal flips of real images (and masks)
    real_count: int = option(10_000, help="real without --data: procedural faces to render")
    real_seed: int = 0                   # their seed
    real_faces: str = option(
        "default", choices=FACE_PRESETS,
        help="real without --data: the procedural faces' preset, default or randomised (light, "
             "colour casts, skin and hair over real ranges, backdrops, occlusion, camera "
             "noise: FaceDomainConfig.randomised())")
    data_shard_size: int = 512           # rows per face Parquet shard
    data_cpus: float = 0.25              # CPUs of each Ray Data read/decode task
    # ---- run ----
    seed: int = option(0, help="training seed")
    checkpoint_every: int = option(1000, help="steps between checkpoints (default {default}; "
                                              "one is always written at the end)")
    sample_every: int = option(  # extra sample grids into out/samples (0: none)
        500, help="steps between extra sample grids in RUNDIR/samples (default {default}; 0: "
                  "only with checkpoints)")
    log_every: int = option(50, help="steps between loss log lines")
    n_samples: int = 8                   # columns of the sample grid
    keep_checkpoints: int = 5
    w_mean_samples: int = 10_000         # w_mean of G_ema in every checkpoint (paper: 10^4)
    num_workers: int = option(1, flag="--workers", help="Ray Train workers, data-parallel")
    use_gpu: bool = option(False, flag="--gpus-per-worker", cli=False)
    device: str = option("cpu", flag="--gpus-per-worker", cli=False)  # "cuda" needs use_gpu
    cpus_per_worker: float = option(0.5, help="CPUs each worker reserves")
    gpus_per_worker: float = option(1.0, cli=False)  # used only with use_gpu
    torch_threads: int = option(0, help="torch threads per worker (default {default}: Ray's "
                                        "setting, its CPU share)")
    max_failures: int = option(0, help="worker failures to recover from by restarting from "
                                       "the last checkpoint")
    progress: bool = option(True, flag="--no-progress", help="no progress bar")  # rank 0 tqdm
    fail_at_step: int | None = None      # TESTING ONLY: the worker raises at this step unless
                                         # it resumed from a checkpoint (exercises restarts)

    # ---- derived values ----
    @property
    def total_steps(self) -> int:
        return self.steps if self.steps is not None else DEFAULT_STEPS[self.domain]

    @property
    def freeze_mode(self) -> str:
        return self.freeze if self.freeze is not None else DEFAULT_FREEZE.get(self.domain,
                                                                              "none")

    @property
    def mask_weight(self) -> float:
        if self.lambda_mask is not None:
            return self.lambda_mask
        if self.domain == "avatar" and self.freeze_mode == "shape":
            return LAMBDA_MASK_FROZEN_SHAPE
        return DEFAULT_LAMBDA_MASK[self.domain]

    @property
    def disc(self) -> DiscriminatorConfig:
        """The discriminator config in use (image-only for domain adaptation)."""
        if self.discriminator is not None:
            return self.discriminator
        seg = (self.domain == "real" if self.mask_discriminator is None
               else self.mask_discriminator)
        return embedded_discriminator(self.generator.size, seg=seg)

    @property
    def worker_batch(self) -> int:
        return self.batch // self.num_workers

    def lazy_ratio(self, every: int, weight: float) -> float:
        """StyleGAN2's lazy-regularisation correction c = k / (k + 1) (1 when unused)."""
        return every / (every + 1) if weight > 0 else 1.0

    # ---- checks ----
    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable."""
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.domain in DOMAINS, "domain", f"must be one of {DOMAINS}")
        need(bool(self.out), "out", "must name a run directory")
        need(self.domain != "avatar" or bool(self.init), "init",
             "is required for domain avatar (G_avatar starts from a G_real checkpoint)")
        need(self.domain != "avatar" or bool(self.data), "data",
             "is required for domain avatar (a rendered avatar dataset directory)")
        need(self.steps is None or self.steps >= 1, "steps", "must be >= 1")
        need(self.num_workers >= 1, "num_workers", "must be >= 1")
        need(self.batch >= 2 and self.batch % max(self.num_workers, 1) == 0, "batch",
             f"must be >= 2 and divisible by the number of workers ({self.num_workers})")
        need(self.batch // max(self.num_workers, 1) >= 2, "batch",
             "must give each worker at least 2 samples")
        need(self.lr > 0, "lr", "must be > 0")
        need(all(0 <= b < 1 for b in self.betas) and len(self.betas) == 2, "betas",
             "must be two values in [0, 1)")
        for name in ("r1_gamma", "r1_gamma_seg", "path_weight", "lambda_color"):
            need(getattr(self, name) >= 0, name, "must be >= 0")
        need(self.lambda_mask is None or self.lambda_mask >= 0, "lambda_mask", "must be >= 0")
        for name in ("r1_every", "path_every", "path_batch_shrink", "checkpoint_every",
                     "log_every", "n_samples", "keep_checkpoints", "w_mean_samples",
                     "real_count", "data_shard_size"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(0 <= self.mixing <= 1, "mixing", "must be a probability in [0, 1]")
        need(0 < self.path_decay <= 1, "path_decay", "must be in (0, 1]")
        need(self.color_temperature > 0, "color_temperature", "must be > 0")
        need(self.ema_half_life_images > 0, "ema_half_life_images", "must be > 0")
        need(self.ema_rampup is None or self.ema_rampup > 0, "ema_rampup", "must be > 0")
        need(self.sample_every >= 0, "sample_every", "must be >= 0 (0: no extra samples)")
        need_worker_fields(self, need)
        need(0 <= self.real_seed < 2 ** 31, "real_seed", "must be in 0..2**31-1")
        need(self.real_faces in FACE_PRESETS, "real_faces",
             f"must be one of {', '.join(FACE_PRESETS)}")
        need(self.real_faces == "default" or (self.domain == "real" and not self.data),
             "real_faces", "applies to procedural faces only (domain real without data)")
        need(self.max_failures >= 0, "max_failures", "must be >= 0")
        need(self.fail_at_step is None or self.fail_at_step >= 0, "fail_at_step", "must be >= 0")
        d = self.disc
        need(d.size == self.generator.size, "discriminator",
             f"size must equal the generator's {self.generator.size}")
        need(d.num_classes == self.generator.num_classes, "discriminator",
             f"num_classes must equal the generator's {self.generator.num_classes}")
        need(self.freeze is None or self.freeze in FREEZE_MODES, "freeze",
             f"must be one of {FREEZE_MODES}")
        need(self.domain == "avatar" or bool(self.init) or self.freeze in (None, "none"),
             "freeze", "applies to finetuning only (domain avatar, or domain real with init): "
             "G_real pretraining trains every weight")
        need(len(self.color_classes) >= 1 and len(set(self.color_classes)) == len(
            self.color_classes) and all(0 <= k < NUM_CLASSES for k in self.color_classes),
            "color_classes", f"must be distinct class ids in 0..{NUM_CLASSES - 1}")
        return out

    def resolved(self) -> "GanTrainConfig":
        """The same run with every None default filled in (what config.json records)."""
        return replace(self, steps=self.total_steps, lambda_mask=self.mask_weight,
                       freeze=self.freeze_mode, discriminator=self.disc)


def _tuples(d: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: (tuple(v) if k in keys and v is not None else v) for k, v in d.items()}


def generator_config_from_dict(d: Mapping[str, Any]) -> GeneratorConfig:
    return GeneratorConfig(**_tuples(d, ("render_channels", "transparent_classes")))


def discriminator_config_from_dict(d: Mapping[str, Any]) -> DiscriminatorConfig:
    return DiscriminatorConfig(**_tuples(d, ("channels",)))


def identity_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """'field old -> new' for each IDENTITY_FIELDS entry that differs between two config dicts."""
    from swiftavatar.rundir import identity_diff

    return identity_diff(dict(old), dict(new), IDENTITY_FIELDS)


__all__ = ["DEFAULT_FREEZE", "DEFAULT_STEPS", "DOMAINS", "GanTrainConfig", "IDENTITY_FIELDS",
           "discriminator_config_from_dict", "embedded_discriminator", "embedded_generator",
           "generator_config_from_dict", "identity_differences"]
