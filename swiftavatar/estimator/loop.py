"""The estimator training loop (paper Eq. 8): `EstimatorTrainer` holds one worker's model and
optimiser and runs one step at a time; `run_epochs` drives it epoch by epoch (metrics,
validation, a checkpoint per `checkpoint_every` epochs); `train_loop_per_worker` is the Ray
Train entry point around both, for a plain run and a sweep trial alike (a trial adds only a
validation hook). The only Ray calls are in `train_loop_per_worker` (and the report helper it
uses, swiftavatar.train_worker.ray_report); `fit_in_process` (swiftavatar.estimator.local)
runs the same code without Ray.
"""
from __future__ import annotations

import sys
import tempfile
import time
from functools import partial
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from swiftavatar.engines.schema import EngineSchema
from swiftavatar.estimator.checkpoint import (checkpoint_dir_name, make_payload,
                                              read_checkpoint, save_checkpoint)
from swiftavatar.estimator.config import EstimatorTrainConfig
from swiftavatar.estimator.losses import estimator_loss
from swiftavatar.estimator.model import AvatarEstimator, check_schema, prepare_images
from swiftavatar.estimator.photometric import photometric_augment, row_seeds
from swiftavatar.estimator.weights import load_backbone
from swiftavatar.train_worker import ray_report, resume_payload, worker_context

Report = Callable[[dict[str, Any], "str | None", int], None]
Validate = Callable[[nn.Module], Mapping[str, float]]
# A validation hook: called once on rank 0 as hook(cfg, schema, device) before training; the
# function it returns scores the plain model after every epoch (a sweep trial's hook is
# tune.validation.TrialValidation: the designer-LPIPS validation).
ValidationHook = Callable[[EstimatorTrainConfig, EngineSchema, torch.device], Validate]


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one worker's random draws at one step (independent of restarts)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def jitter_images(x: torch.Tensor, shift_px: int, color: float,
                  gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to +-shift_px (edge pixels repeated) and brightness/contrast
    jitter of up to +-color, per image. x (N, 3, S, S) in [-1, 1] -> same shape and range."""
    n, _, s, _ = x.shape
    if shift_px > 0:
        pad = torch.nn.functional.pad(x, (shift_px,) * 4, mode="replicate")
        off = torch.randint(0, 2 * shift_px + 1, (n, 2), generator=gen)
        x = torch.stack([pad[i, :, a:a + s, b:b + s] for i, (a, b) in enumerate(off.tolist())])
    if color > 0:
        u = torch.rand((2, n, 1, 1, 1), generator=gen).to(x.device) * 2 - 1
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * (1 + color * u[0]) + mean + color * u[1]).clamp(-1.0, 1.0)
    return x


class EstimatorTrainer:
    """One worker's training state. `wrap` turns the model into its data-parallel form (Ray
    Train's prepare_model); `resume` is a checkpoint payload to continue from."""

    def __init__(self, cfg: EstimatorTrainConfig, schema: EngineSchema,
                 device: torch.device | str = "cpu", *, rank: int = 0, world_size: int = 1,
                 wrap: Callable[[nn.Module], nn.Module] | None = None,
                 resume: Mapping[str, Any] | None = None, hub_dir: str | None = None) -> None:
        self.cfg = cfg.validate()
        self.schema = schema
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        torch.manual_seed(cfg.seed)                      # the same initial heads everywhere
        model = AvatarEstimator.for_schema(cfg.model, schema)
        if resume is not None:
            if resume["schema_fingerprint"] != schema.fingerprint:
                raise ValueError(f"the checkpoint was trained for engine schema "
                                 f"{resume['schema_fingerprint']}, the data has "
                                 f"{schema.fingerprint} ({schema.engine})")
            model.load_state_dict(resume["model"])
            model.backbone_info = dict(resume["backbone_info"])
        else:
            load_backbone(model, hub_dir=hub_dir)
        check_schema(model, schema)
        self.model = model.to(self.device)               # the plain module (checkpoints, eval)
        if cfg.freeze_trunk:                             # heads only; BN statistics kept
            self.model.trunk.requires_grad_(False)
        self.net = wrap(self.model) if wrap is not None else self.model
        trained = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(trained, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if resume is not None and resume.get("optimizer") is not None:
            self.opt.load_state_dict(resume["optimizer"])
        self.epoch = int(resume["epoch"]) if resume is not None else 0   # epochs finished
        self.step = int(resume["step"]) if resume is not None else 0

    def targets(self, batch: Mapping[str, Any], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(cont (n, n_c) float32 in [0, 1], disc (n, n_d) int64) on the device."""
        cont = (torch.as_tensor(batch["cont"], dtype=torch.float32) if "cont" in batch
                else torch.zeros((n, 0)))
        disc = (torch.as_tensor(batch["disc"], dtype=torch.int64) if "disc" in batch
                else torch.zeros((n, 0), dtype=torch.int64))
        assert cont.shape == (n, len(self.schema.face_continuous)), cont.shape
        assert disc.shape == (n, len(self.schema.face_discrete)), disc.shape
        return cont.to(self.device), disc.to(self.device)

    def inputs(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """(n, H, W, 3) uint8 -> (n, 3, S, S) float in [-1, 1] on the device."""
        return prepare_images(torch.as_tensor(batch["image"]).to(self.device),
                              self.cfg.model.input_size)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One Adam step on a worker batch {"image", "cont", "disc"} (data.decode_batch)."""
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr_at(self.epoch)
        x = self.inputs(batch)
        n = x.shape[0]
        cont, disc = self.targets(batch, n)
        if cfg.photometric > 0:                          # per (seed, epoch, row)
            x = photometric_augment(x, cfg.photometric,
                                    row_seeds(cfg.seed, self.epoch, batch["image"]))
        if cfg.shift_px or cfg.color_jitter:
            gen = torch.Generator().manual_seed(step_seed(cfg.seed, self.rank, self.step))
            x = jitter_images(x, cfg.shift_px, cfg.color_jitter, gen)
        self.net.train()
        if cfg.freeze_trunk:
            self.model.trunk.eval()                      # frozen BatchNorm statistics too
        out = self.net(x)
        loss, parts = estimator_loss(out, cont, disc, lambda_c=cfg.lambda_c,
                                     lambda_d=cfg.lambda_d, alpha=cfg.sce_alpha,
                                     beta=cfg.sce_beta, log_zero=cfg.rce_log_zero)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        with torch.no_grad():
            acc = _accuracies(out["logits"], disc)
        return {"loss": float(loss.detach()), "loss_c": float(parts["loss_c"]),
                "loss_d": float(parts["loss_d"]),
                "acc": float(acc.mean()) if acc.numel() else 1.0,
                "lr": cfg.lr_at(self.epoch)}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Mapping[str, Any]]) -> dict[str, float]:
        """Mean L1 (normalised units) and accuracies over `batches`, summed over workers
        (every worker must call this at the same point). {} when no worker had a row."""
        self.model.eval()
        face_d = [self.schema.discrete[j] for j in self.schema.face_discrete]
        sums = torch.zeros(2 + len(face_d), dtype=torch.float64, device=self.device)
        for batch in batches:
            x = self.inputs(batch)
            cont, disc = self.targets(batch, x.shape[0])
            out = self.model(x)
            sums[0] += x.shape[0]
            sums[1] += (out["cont"] - cont).abs().mean(1).sum() if cont.shape[1] else 0.0
            if disc.shape[1]:
                sums[2:] += _accuracies(out["logits"], disc).to(sums) * x.shape[0]
        _all_reduce(sums, self.world_size)
        n = float(sums[0])
        if n == 0:
            return {}
        out_m = {"val_rows": n, "val_l1": float(sums[1]) / n}
        accs = (sums[2:] / n).tolist()
        if accs:
            out_m["val_acc"] = float(np.mean(accs))
            out_m.update({f"val_acc.{p.name}": a for p, a in zip(face_d, accs)})
        return out_m

    def payload(self, metrics: Mapping[str, float] | None = None,
                data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return make_payload(model=self.model, optimizer=self.opt, schema=self.schema,
                            epoch=self.epoch, step=self.step, run_config=self.cfg.to_dict(),
                            metrics=metrics, data=data)


def _accuracies(logits: list[torch.Tensor], disc: torch.Tensor) -> torch.Tensor:
    """(n_d,) share of rows whose argmax is the target, per discrete head."""
    if not logits:
        return torch.zeros(0)
    return torch.stack([(lg.argmax(1) == disc[:, j]).float().mean()
                        for j, lg in enumerate(logits)]).cpu()


def _all_reduce(t: torch.Tensor, world_size: int) -> None:
    if world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)


def _say(text: str) -> None:
    """One line on stdout (Ray Train V2 echoes `print` calls twice; plain writes once)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_epochs(trainer: EstimatorTrainer, train_epoch: Callable[[int], Iterable[Mapping]],
               val_batches: Callable[[], Iterable[Mapping]] | None, *, report: Report,
               data_info: Mapping[str, Any] | None = None,
               validate: Validate | None = None) -> None:
    """Train from trainer.epoch to cfg.epochs. After each epoch: the epoch's training means
    (averaged over workers), the held-out rows' metrics and, where this worker has one,
    `validate(model)`'s metrics; every checkpoint_every epochs and at the end
    `report(metrics, checkpoint_dir or None, epoch)` (every worker calls it; rank 0 passes
    the directory)."""
    cfg, world = trainer.cfg, trainer.world_size
    is_rank0 = trainer.rank == 0
    start = trainer.epoch
    if start >= cfg.epochs:
        return
    if is_rank0:
        _say(f"[train-estimator] epochs {start} -> {cfg.epochs}, {world} worker(s) x batch "
             f"{cfg.worker_batch}, trunk {trainer.model.backbone_info.get('kind')}"
             f"{', resumed' if start else ''}")
    t_start = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        sums: dict[str, float] = {}
        steps, t0 = 0, time.perf_counter()
        for batch in train_epoch(epoch):
            m = trainer.train_step(batch)
            steps += 1
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v
            if is_rank0 and cfg.progress and trainer.step % cfg.log_every == 0:
                rate = steps / (time.perf_counter() - t0)
                _say(f"[train-estimator] epoch {epoch + 1} step {trainer.step}: loss "
                     f"{m['loss']:.4f} acc {m['acc']:.3f} ({rate:.2f} it/s)")
        if steps == 0:
            raise ValueError("the training data gave no full batch in an epoch: use more rows "
                             "or a smaller batch")
        keys = sorted(sums)
        means = torch.tensor([sums[k] / steps for k in keys], dtype=torch.float64,
                             device=trainer.device)
        _all_reduce(means, world)
        metrics = {k: v / world for k, v in zip(keys, means.cpu().tolist())}
        trainer.epoch = epoch + 1
        if val_batches is not None:
            metrics.update(trainer.evaluate(val_batches()))
        if validate is not None:
            with torch.no_grad():
                metrics.update(validate(trainer.model))
        metrics.update({"epoch": trainer.epoch, "step": trainer.step, "start_epoch": start,
                        "epoch_s": time.perf_counter() - t0,
                        "wall_s": time.perf_counter() - t_start})
        if is_rank0:
            shown = {k: v for k, v in metrics.items() if "." not in k}
            _say(f"[train-estimator] epoch {trainer.epoch}/{cfg.epochs}: " +
                 " ".join(f"{k} {v:.4g}" for k, v in shown.items()))
        last = trainer.epoch >= cfg.epochs
        if trainer.epoch % cfg.checkpoint_every == 0 or last:
            _checkpoint(trainer, metrics, report, data_info)
        else:
            report(metrics, None, trainer.epoch)


def _checkpoint(trainer: EstimatorTrainer, metrics: dict[str, Any], report: Report,
                data_info: Mapping[str, Any] | None) -> None:
    if trainer.rank != 0:
        report(metrics, None, trainer.epoch)
        return
    with tempfile.TemporaryDirectory(prefix="estimator-ckpt-") as tmp:
        save_checkpoint(tmp, trainer.payload(metrics, data_info))
        report(metrics, tmp, trainer.epoch)


# ---- the Ray Train edge ------------------------------------------------------------------
def train_loop_per_worker(config: dict) -> None:
    """Ray Train worker function, of a plain run and a sweep trial. config: {"run":
    EstimatorTrainConfig.to_dict(), "engine_schema": schema JSON, "resume_from": a checkpoint
    path to start from when Ray has none (or None), "data": a plain description of the data,
    stored in checkpoints, "validation": a ValidationHook or None}."""
    import ray.train
    import ray.train.torch

    cfg = EstimatorTrainConfig.from_dict(config["run"]).validate()
    schema = EngineSchema.from_json(config["engine_schema"])
    rank, world, device = worker_context(cfg.torch_threads, cfg.use_gpu)
    resume = resume_payload(read_checkpoint, "epoch", config.get("resume_from"))
    report = partial(ray_report, dir_name=checkpoint_dir_name)

    def wrap(m: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(m, move_to_device=device)

    trainer = EstimatorTrainer(cfg, schema, device, rank=rank, world_size=world, wrap=wrap,
                               resume=resume)
    if resume is not None and trainer.epoch >= cfg.epochs:
        # a run restarted after its training had finished (a restored sweep's trial): report
        # its last result again, so that whoever listens (Tune) has it
        report(dict(resume.get("metrics") or {}), None, trainer.epoch)
        return
    hook: ValidationHook | None = config.get("validation")
    validate = hook(cfg, schema, device) if hook is not None and rank == 0 else None
    train = ray.train.get_dataset_shard("train")
    val = ray.train.get_dataset_shard("val") if cfg.val_fraction > 0 else None
    shuffle = max(4 * cfg.worker_batch, 256)
    run_epochs(
        trainer,
        lambda epoch: train.iter_torch_batches(batch_size=cfg.worker_batch, drop_last=True,
                                               local_shuffle_buffer_size=shuffle),
        (lambda: val.iter_torch_batches(batch_size=cfg.worker_batch)) if val else None,
        report=report, data_info=config.get("data"), validate=validate)


__all__ = ["EstimatorTrainer", "ValidationHook", "jitter_images", "run_epochs", "step_seed",
           "train_loop_per_worker"]
