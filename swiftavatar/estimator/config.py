"""Configuration of avatar-estimator training (paper section 3.3 and section 4).

Defaults are the paper's: Adam, learning rate 1e-3 halved every 30 epochs, batch 256, 100
epochs, lambda_c 1 and lambda_d 10 (Eq. 8), ResNet-18 at 224 px. `embedded()` is the preset for
a 2-core CPU and a few thousand 64-px rows (see its docstring for the measurements behind it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

from swiftavatar.config import StageConfig, need_worker_fields, option
from swiftavatar.estimator.losses import LAMBDA_C, LAMBDA_D, RCE_LOG_ZERO, SCE_ALPHA, SCE_BETA
from swiftavatar.estimator.model import EstimatorConfig

# Fields that define what a run directory trains; a re-run into the same `out` must repeat
# them (the rest, e.g. `epochs`, may change between runs).
IDENTITY_FIELDS = ("data", "image_column", "augmented", "val_fraction", "model", "seed",
                   "lambda_c", "lambda_d", "sce_alpha", "sce_beta", "rce_log_zero")


@dataclass(frozen=True)
class EstimatorTrainConfig(StageConfig):
    """One estimator training run. `batch` is the global batch, split evenly over workers."""

    data: str = option("", required=True,
                       help="paired dataset (produce) or rendered dataset (render) directory")
    # run directory: config.json, train/checkpoint_*/, summary.json
    out: str = option("", required=True, help="run directory")
    image_column: str | None = option(  # None: realistic_png (pairs) / image_png (renders)
        None, help="image column (default realistic_png for pairs, image_png for renders)")
    # use aug_index > 0 rows ("+semantic augmentation"); False: aug_index 0 only ("+domain
    # adaptation")
    augmented: bool = option(
        True, flag="--rows", choices={"all": True, "inverted": False},
        help="paired data rows: all (with the semantic augmentations, SwiftAvatar; default) or "
             "inverted (aug_index 0 only, '+ domain adaptation')")
    val_fraction: float = option(  # validated on aug_index 0
        0.0, help="share of sample ids held out for validation")
    model: EstimatorConfig = option(default_factory=EstimatorConfig,
                                    flag="--input-size/--trunk/--pretrained", cli=False)
    # ---- optimisation (section 4) ----
    epochs: int = option(100, help="epochs")
    batch: int = option(256, help="global batch, split over workers")
    lr: float = option(1e-3, help="Adam learning rate")
    lr_step_epochs: int = option(  # the learning rate is multiplied by lr_gamma every ...
        30, help="epochs between learning-rate halvings")
    lr_gamma: float = 0.5
    weight_decay: float = option(0.0, help="Adam weight decay")
    # ---- Eq. 8 ----
    lambda_c: float = option(LAMBDA_C, help="Eq. 8 weight of the continuous L1 term")
    lambda_d: float = option(LAMBDA_D, help="Eq. 8 weight of the discrete SCE term")
    sce_alpha: float = option(SCE_ALPHA, help="SCE weight of cross-entropy")
    sce_beta: float = option(SCE_BETA, help="SCE weight of reverse cross-entropy")
    rce_log_zero: float = RCE_LOG_ZERO
    # ---- train-time image jitter (not in the paper; off by default). No horizontal flips:
    # engines have left/right asymmetric parameters (tilts, offsets, parts) ----
    shift_px: int = 0                # random translation up to +-shift_px (at input_size)
    color_jitter: float = 0.0        # brightness and contrast jitter of up to +-this fraction
    # photometric augmentation of the input (photometric.photometric_augment): white balance,
    # brightness, contrast, saturation, hue, gamma, blur, noise, JPEG; 0 = off, 1 = strong
    photometric: float = option(0.0, help="photometric augmentation of the realistic input "
                                "(white balance, exposure, contrast, saturation, hue, gamma, "
                                "blur, noise, JPEG), 0 = off (default), 1 = strong, up to 2")
    # train the heads only, on the trunk's frozen ImageNet features (linear probing; not in the
    # paper). Few identities in the pairs make a fine-tuned trunk memorise them; frozen
    # features also keep what ImageNet learned of real photos
    freeze_trunk: bool = option(False, help="train only the heads on the trunk's frozen "
                                "ImageNet features (not in the paper; fewer weights to fit "
                                "to few identities)")
    # ---- run ----
    seed: int = option(0, help="seed of initialisation and batch order")
    log_every: int = 50              # steps between progress lines (rank 0)
    checkpoint_every: int = 1        # epochs between checkpoints (and always the last)
    keep_checkpoints: int = 3
    num_workers: int = option(1, flag="--workers",
                              help="Ray Train workers (DDP); default: the preset's")
    use_gpu: bool = option(False, flag="--gpus-per-worker", cli=False)
    device: str = option("cpu", flag="--gpus-per-worker", cli=False)  # "cuda" needs use_gpu
    cpus_per_worker: float = option(1.0, help="CPUs each Ray Train worker reserves")
    gpus_per_worker: float = option(1.0, cli=False)  # used only with use_gpu
    torch_threads: int = option(  # per worker; 0: what Ray sets (its CPU share)
        0, help="torch threads per worker (0: Ray's CPU share)")
    data_cpus: float = 0.25          # CPUs of each Ray Data read/decode task
    materialize_mb: int = 1024       # decoded splits up to this size (and half the object
                                     # store) are decoded once and kept in Ray's object store;
                                     # larger ones stream from Parquet every epoch
    max_failures: int = 0            # restarts from the last checkpoint
    progress: bool = option(True, flag="--no-progress", help="no per-step log lines")

    @classmethod
    def embedded(cls, **overrides: Any) -> "EstimatorTrainConfig":
        """A preset for 2 CPU cores and a few thousand 64-px rows: 64-px input (the data's
        resolution), batch 64 over 2 DDP workers (0.5 CPU each, one torch thread each:
        two threads per process on a busy 2-core machine ran 10x slower in a probe), 24
        epochs with the rate halved every 8 (the paper's schedule, compressed), 5% of the
        samples held out. Measured on a loaded 2-core machine: a ResNet-18 step at batch 64
        and 64 px takes about 0.8 s on one thread (0.48 s at batch 32), so 4000 rows (62
        steps) make an epoch of under a minute and the run about 20 minutes."""
        base = cls(model=EstimatorConfig.embedded(64), epochs=24, batch=64, lr_step_epochs=8,
                   val_fraction=0.05, num_workers=2, cpus_per_worker=0.5, torch_threads=1,
                   log_every=20)
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["model"] = self.model.to_dict()        # its default-off options left out
        return d

    @property
    def worker_batch(self) -> int:
        return self.batch // self.num_workers

    def lr_at(self, epoch: int) -> float:
        """Step decay: lr * gamma ** (epoch // lr_step_epochs) (epoch counted from 0)."""
        return self.lr * self.lr_gamma ** (epoch // self.lr_step_epochs)

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable."""
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(bool(self.data), "data", "must name a paired or rendered dataset directory")
        need(bool(self.out), "out", "must name a run directory")
        need(0.0 <= self.val_fraction < 1.0, "val_fraction", "must be in [0, 1)")
        for name in ("epochs", "lr_step_epochs", "log_every", "checkpoint_every",
                     "keep_checkpoints", "num_workers"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(self.batch >= 1 and self.batch % max(self.num_workers, 1) == 0, "batch",
             f"must be >= 1 and divisible by the number of workers ({self.num_workers})")
        need(self.lr > 0, "lr", "must be > 0")
        need(0 < self.lr_gamma <= 1, "lr_gamma", "must be in (0, 1]")
        for name in ("weight_decay", "lambda_c", "lambda_d", "sce_alpha", "sce_beta",
                     "color_jitter"):
            need(getattr(self, name) >= 0, name, "must be >= 0")
        need(self.rce_log_zero < 0, "rce_log_zero", "must be < 0 (the SCE paper uses -4)")
        need(self.lambda_c + self.lambda_d > 0, "lambda_d", "lambda_c or lambda_d must be > 0")
        need(self.color_jitter < 1, "color_jitter", "must be < 1")
        need(0 <= self.photometric <= 2, "photometric", "must be in [0, 2] (0: off)")
        need(not self.freeze_trunk or self.model.pretrained is not None, "freeze_trunk",
             "needs trunk weights (a frozen random trunk learns nothing): drop --pretrained "
             "none")
        need(0 <= self.shift_px <= self.model.input_size // 4, "shift_px",
             f"must be in 0..{self.model.input_size // 4}")
        need_worker_fields(self, need)
        need(self.materialize_mb >= 0, "materialize_mb", "must be >= 0 (0: always stream)")
        need(self.max_failures >= 0, "max_failures", "must be >= 0")
        out += [("model", f"{k} {m}") for k, m in self.model.problems()]
        return out


def identity_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """'field old -> new' for each IDENTITY_FIELDS entry that differs between two config dicts."""
    from swiftavatar.rundir import identity_diff

    return identity_diff(dict(old), dict(new), IDENTITY_FIELDS)


__all__ = ["EstimatorTrainConfig", "IDENTITY_FIELDS", "identity_differences"]
