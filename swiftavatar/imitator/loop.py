"""The imitator's training loop: `ImitatorTrainer` holds one worker's model and optimiser and
runs one step at a time; `run_epochs` drives it epoch by epoch (means over workers, held-out
L1, a checkpoint every `checkpoint_every` epochs); `train_loop_per_worker` is the Ray Train
entry point around both (the only Ray calls, with swiftavatar.train_worker's helpers).
"""
from __future__ import annotations

import sys
import tempfile
import time
from functools import partial
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from swiftavatar.engines.schema import EngineSchema
from swiftavatar.imitator.checkpoint import (checkpoint_dir_name, make_payload,
                                             read_checkpoint, save_checkpoint)
from swiftavatar.imitator.config import ImitatorTrainConfig
from swiftavatar.imitator.losses import imitator_loss
from swiftavatar.imitator.model import Imitator, onehot_inputs
from swiftavatar.train_worker import (all_reduce_sum, mean_over_workers, ray_report,
                                      resume_payload, worker_context)

Report = Callable[[dict[str, Any], "str | None", int], None]
TAG = "[train-imitator]"


def images_to_tensor(images: Any, size: int, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) float in [-1, 1] on `device`."""
    x = torch.as_tensor(images).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-1] != size:
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                      align_corners=False)
    return x


class ImitatorTrainer:
    """One worker's training state; `wrap` makes the data-parallel form (Ray Train's
    prepare_model); `resume` is a checkpoint payload to continue from."""

    def __init__(self, cfg: ImitatorTrainConfig, schema: EngineSchema,
                 device: torch.device | str = "cpu", *, rank: int = 0, world_size: int = 1,
                 wrap: Callable[[nn.Module], nn.Module] | None = None,
                 resume: Mapping[str, Any] | None = None) -> None:
        self.cfg, self.schema = cfg.validate(), schema
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        torch.manual_seed(cfg.seed)                       # the same initial weights everywhere
        model = Imitator.for_schema(cfg.model, schema)
        if resume is not None:
            _check_schema(resume, schema)
            model.load_state_dict(resume["model"])
        self.model = model.to(self.device)
        self.net = wrap(self.model) if wrap is not None else self.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr,
                                    betas=(cfg.beta1, 0.999))
        if resume is not None and resume.get("optimizer") is not None:
            self.opt.load_state_dict(resume["optimizer"])
        self.epoch = int(resume["epoch"]) if resume is not None else 0
        self.step = int(resume["step"]) if resume is not None else 0
        self.perceptual = None
        if cfg.perceptual_weight > 0:
            from swiftavatar.metrics import build_lpips

            self.perceptual = build_lpips(device=self.device)

    def tensors(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs (N, onehot_dim), target images (N, 3, S, S) in [-1, 1]) on the device."""
        n = len(batch["image"])
        cont = torch.as_tensor(batch["cont"], dtype=torch.float32).reshape(n, -1)
        disc = torch.as_tensor(batch["disc"], dtype=torch.int64).reshape(n, -1)
        x = onehot_inputs(cont, disc, self.schema.num_options).to(self.device)
        return x, images_to_tensor(batch["image"], self.cfg.model.image_size, self.device)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        for g in self.opt.param_groups:
            g["lr"] = self.cfg.lr_at(self.epoch)
        x, target = self.tensors(batch)
        self.net.train()
        loss, parts = imitator_loss(self.net(x), target, perceptual=self.perceptual,
                                    perceptual_weight=self.cfg.perceptual_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return {"loss": float(loss.detach()), **parts, "lr": self.cfg.lr_at(self.epoch)}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Mapping[str, Any]]) -> dict[str, float]:
        """Held-out L1 (pixels in [-1, 1]) summed over workers; {} when no worker had a row."""
        self.model.eval()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        for batch in batches:
            x, target = self.tensors(batch)
            sums[0] += x.shape[0]
            sums[1] += (self.model(x) - target).abs().mean((1, 2, 3)).sum()
        all_reduce_sum(sums, self.world_size)
        n = float(sums[0])
        return {"val_rows": n, "val_l1": float(sums[1]) / n} if n else {}

    def payload(self, metrics: Mapping[str, float] | None = None,
                data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return make_payload(self.model, self.opt, self.schema, epoch=self.epoch,
                            step=self.step, run_config=self.cfg.to_dict(),
                            metrics={k: float(v) for k, v in (metrics or {}).items()},
                            data=dict(data or {}))


def _check_schema(resume: Mapping[str, Any], schema: EngineSchema) -> None:
    trained_for = resume["schema_fingerprint"]
    if trained_for != schema.fingerprint:
        raise ValueError(f"the checkpoint was trained for engine schema {trained_for}, the "
                         f"data has {schema.fingerprint} ({schema.engine}): use a new --out")


def _say(text: str) -> None:
    sys.stdout.write(f"{TAG} {text}\n")   # plain writes: Ray Train V2 echoes print() twice
    sys.stdout.flush()


def run_epochs(trainer: ImitatorTrainer, train_epoch: Callable[[int], Iterable[Mapping]],
               val_batches: Callable[[], Iterable[Mapping]] | None, *, report: Report,
               data_info: Mapping[str, Any] | None = None) -> None:
    """Train from trainer.epoch to cfg.epochs; after each epoch the training means (over
    workers) and the held-out L1; `report(metrics, checkpoint_dir or None, epoch)` each epoch
    (every worker calls it; rank 0 passes the checkpoint directory it wrote)."""
    cfg, world, rank0 = trainer.cfg, trainer.world_size, trainer.rank == 0
    start = trainer.epoch
    if start >= cfg.epochs:
        return
    if rank0:
        _say(f"epochs {start} -> {cfg.epochs}, {world} worker(s) x batch {cfg.worker_batch}, "
             f"{cfg.model.image_size} px{', resumed' if start else ''}")
    t_start = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        sums: dict[str, float] = {}
        t0, steps = time.perf_counter(), 0
        for steps, batch in enumerate(train_epoch(epoch), start=1):
            m = trainer.train_step(batch)
            sums = {k: sums.get(k, 0.0) + v for k, v in m.items()}
            if rank0 and cfg.progress and trainer.step % cfg.log_every == 0:
                _say(f"epoch {epoch + 1} step {trainer.step}: loss {m['loss']:.4f} "
                     f"({steps / (time.perf_counter() - t0):.2f} it/s)")
        if steps == 0:
            raise ValueError("the training data gave no full batch in an epoch: render more "
                             "or lower --batch")
        metrics = mean_over_workers(sums, steps, world, trainer.device)
        trainer.epoch = epoch + 1
        if val_batches is not None:
            metrics.update(trainer.evaluate(val_batches()))
        metrics.update({"epoch": trainer.epoch, "step": trainer.step, "start_epoch": start,
                        "epoch_s": time.perf_counter() - t0,
                        "wall_s": time.perf_counter() - t_start})
        if rank0:
            _say(f"epoch {trainer.epoch}/{cfg.epochs}: "
                 + " ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        if rank0 and (trainer.epoch % cfg.checkpoint_every == 0 or trainer.epoch >= cfg.epochs):
            with tempfile.TemporaryDirectory(prefix="imitator-ckpt-") as tmp:
                save_checkpoint(tmp, trainer.payload(metrics, data_info))
                report(metrics, tmp, trainer.epoch)
        else:
            report(metrics, None, trainer.epoch)


def train_loop_per_worker(config: dict) -> None:
    """Ray Train worker function. config: {"run": ImitatorTrainConfig.to_dict(),
    "engine_schema": schema JSON, "resume_from": a checkpoint path to start from when Ray has
    none (or None), "data": a plain description of the data, stored in checkpoints}."""
    import ray.train
    import ray.train.torch

    cfg = ImitatorTrainConfig.from_dict(config["run"]).validate()
    schema = EngineSchema.from_json(config["engine_schema"])
    rank, world, device = worker_context(cfg.torch_threads, cfg.use_gpu)
    resume = resume_payload(read_checkpoint, "epoch", config.get("resume_from"))

    def wrap(m: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(m, move_to_device=device)

    trainer = ImitatorTrainer(cfg, schema, device, rank=rank, world_size=world, wrap=wrap,
                              resume=resume)
    train = ray.train.get_dataset_shard("train")
    val = ray.train.get_dataset_shard("val")
    shuffle = max(4 * cfg.worker_batch, 256)
    run_epochs(
        trainer,
        lambda epoch: train.iter_torch_batches(batch_size=cfg.worker_batch, drop_last=True,
                                               local_shuffle_buffer_size=shuffle),
        lambda: val.iter_torch_batches(batch_size=cfg.worker_batch),
        report=partial(ray_report, dir_name=checkpoint_dir_name),
        data_info=config.get("data"))


__all__ = ["ImitatorTrainer", "images_to_tensor", "run_epochs", "train_loop_per_worker"]
