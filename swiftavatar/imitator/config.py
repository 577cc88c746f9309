"""Configuration of imitator training (F2P's imitator on an engine's renders).

F2P trains its imitator on renders of random parameters with an L1 loss (SGD there; Adam with
the DCGAN betas here, which converges in far fewer epochs on a CPU). `embedded()` is the preset
for a 2-core CPU and a few thousand 64-px renders.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from swiftavatar.config import StageConfig, need_worker_fields, option
from swiftavatar.imitator.model import ImitatorConfig

# Fields that define what a run directory trains; a re-run into the same `out` must repeat
# them (`epochs` may grow).
IDENTITY_FIELDS = ("data", "val_fraction", "model", "seed", "perceptual_weight")


@dataclass(frozen=True)
class ImitatorTrainConfig(StageConfig):
    """One imitator training run. `batch` is the global batch, split evenly over workers."""

    data: str = option("", required=True,
                       help="rendered dataset directory (`swiftavatar render`)")
    # run directory: config.json, train/checkpoint_*/, summary.json, samples.png
    out: str = option("", required=True, help="run directory")
    val_fraction: float = option(0.05, help="share of sample ids held out for the report")
    model: ImitatorConfig = option(default_factory=ImitatorConfig,
                                   flag="--image-size/--channels", cli=False)
    epochs: int = option(20, help="epochs")
    batch: int = option(64, help="global batch, split over workers")
    lr: float = option(2e-3, help="Adam learning rate")
    lr_step_epochs: int = option(10, help="epochs between learning-rate halvings")
    lr_gamma: float = 0.5
    beta1: float = 0.5               # Adam's first beta (DCGAN's)
    perceptual_weight: float = option(
        0.0, help="weight of an LPIPS term added to the L1 loss (0: L1 only, as F2P)")
    # the report on held-out renders: L1 and LPIPS (swiftavatar.metrics.build_lpips)
    report_lpips: bool = option(True, flag="--no-lpips",
                                help="leave LPIPS out of the held-out report (L1 only)")
    samples: int = 8                 # held-out renders in samples.png
    seed: int = option(0, help="seed of initialisation and batch order")
    log_every: int = 20              # steps between progress lines (rank 0)
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    num_workers: int = option(1, flag="--workers", help="Ray Train workers (DDP)")
    use_gpu: bool = option(False, flag="--gpus-per-worker", cli=False)
    device: str = option("cpu", flag="--gpus-per-worker", cli=False)
    cpus_per_worker: float = option(1.0, help="CPUs each Ray Train worker reserves")
    gpus_per_worker: float = option(1.0, cli=False)
    torch_threads: int = option(0, help="torch threads per worker (0: Ray's CPU share)")
    data_cpus: float = 0.25
    materialize_mb: int = 1024       # decoded splits up to this size are kept in the store
    max_failures: int = 0
    progress: bool = option(True, flag="--no-progress", help="no per-step log lines")

    @classmethod
    def embedded(cls, **overrides: Any) -> "ImitatorTrainConfig":
        """64-px output, batch 64 over 2 DDP workers of 0.5 CPU and one torch thread each,
        20 epochs with the rate halved every 8, 5% of the renders held out."""
        base = cls(model=ImitatorConfig(image_size=64), epochs=20, batch=64, lr_step_epochs=8,
                   num_workers=2, cpus_per_worker=0.5, torch_threads=1)
        return replace(base, **overrides)

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable."""
        out: list[tuple[str, str]] = []
        rules = {
            "data": (bool(self.data), "must name a rendered dataset directory"),
            "out": (bool(self.out), "must name a run directory"),
            "val_fraction": (0.0 < self.val_fraction < 1.0,
                             "must be in (0, 1): the report needs held-out renders"),
            "batch": (self.batch >= 1 and self.batch % max(self.num_workers, 1) == 0,
                      f"must be >= 1 and divisible by the workers ({self.num_workers})"),
            "lr": (self.lr > 0, "must be > 0"),
            "lr_gamma": (0 < self.lr_gamma <= 1, "must be in (0, 1]"),
            "beta1": (0 <= self.beta1 < 1, "must be in [0, 1)"),
            "perceptual_weight": (self.perceptual_weight >= 0, "must be >= 0"),
            "materialize_mb": (self.materialize_mb >= 0, "must be >= 0 (0: always stream)"),
        }
        rules.update({name: (getattr(self, name) >= 1, "must be >= 1") for name in (
            "epochs", "lr_step_epochs", "log_every", "checkpoint_every", "keep_checkpoints",
            "num_workers")})
        rules.update({name: (getattr(self, name) >= 0, "must be >= 0")
                      for name in ("samples", "max_failures")})
        need = self.checker(out)
        for name, (ok, msg) in rules.items():
            need(ok, name, msg)
        need_worker_fields(self, need)
        return out + [("model", f"{k} {m}") for k, m in self.model.problems()]

    @property
    def worker_batch(self) -> int:
        return self.batch // self.num_workers

    def lr_at(self, epoch: int) -> float:
        """The rate in epoch `epoch` (from 0): halved (lr_gamma) every lr_step_epochs."""
        return self.lr * self.lr_gamma ** (epoch // self.lr_step_epochs)


__all__ = ["IDENTITY_FIELDS", "ImitatorTrainConfig"]
