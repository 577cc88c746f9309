"""The generator training loop (paper Eq. 1-3): `GanTrainer` holds one worker's models and runs
one iteration at a time; `train_loop_per_worker` is the Ray Train entry point around it.

The only Ray calls are in `train_loop_per_worker`: the dataset shard, the worker context (rank,
world size), the checkpoint to resume from, DDP wrapping (prepare_model: G and D are wrapped,
G_ema and the frozen G_real are not) and reports (swiftavatar.train_worker.ray_report).
Everything else is plain torch and runs in any process (tests and benchmarks drive `GanTrainer`
and `run_loop` directly).
"""
from __future__ import annotations

import copy
import sys
import tempfile
import time
from functools import partial
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from swiftavatar import shards
from swiftavatar.models import Discriminator, SemanticGenerator
from swiftavatar.training.checkpoint import (
    SAMPLES_DIR, checkpoint_dir_name, discriminator_from, make_payload, read_checkpoint,
    sample_name, save_checkpoint)
from swiftavatar.training.gan_config import GanTrainConfig, generator_config_from_dict
from swiftavatar.training.freeze import freeze_gradients, frozen_elements
from swiftavatar.training.gan_data import epochs
from swiftavatar.training.gan_steps import (
    GanNets, d_step, ema_beta, ema_update, g_step, is_due, path_step, r1_step,
    set_requires_grad, to_training_tensors, unwrap)
from swiftavatar.training.samples import fixed_z, sample_grid
from swiftavatar.train_worker import ray_report, resume_payload, worker_context


class InjectedFailure(RuntimeError):
    """Raised by `fail_at_step` (testing only) to exercise restarts from a checkpoint."""


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one worker's random draws at one step (independent of restarts)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def _adam(params, cfg: GanTrainConfig, every: int, weight: float) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation correction: lr * c, betas ** c, c = k/(k+1)."""
    c = cfg.lazy_ratio(every, weight)
    return torch.optim.Adam(params, lr=cfg.lr * c, betas=(cfg.betas[0] ** c, cfg.betas[1] ** c))


class GanTrainer:
    """One worker's training state. `wrap` turns a module into its data-parallel form (Ray
    Train's prepare_model); `resume` is a checkpoint payload to continue from; `init` is the
    G_real checkpoint payload (read from cfg.init when not given; domain avatar, or a G_real
    finetune)."""

    def __init__(self, cfg: GanTrainConfig, device: torch.device | str = "cpu", *, rank: int = 0,
                 world_size: int = 1, wrap: Callable[[nn.Module], nn.Module] | None = None,
                 resume: Mapping[str, Any] | None = None,
                 init: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg = cfg.validate().resolved()
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        torch.manual_seed(cfg.seed)                      # the same initial weights everywhere
        g = SemanticGenerator(cfg.generator)
        d = Discriminator(cfg.disc)
        self.g_real: SemanticGenerator | None = None
        self.d_source = "new"
        if cfg.init:                                     # G_avatar, or a G_real finetune
            init = init if init is not None else read_checkpoint(cfg.init)
            init_cfg = generator_config_from_dict(init["generator_config"])
            if init_cfg != cfg.generator:
                raise ValueError(f"the G_real checkpoint {cfg.init} has generator config "
                                 f"{init_cfg}, the run asks for {cfg.generator}")
            g.load_state_dict(init["g_ema"])             # G_avatar starts as G_real
            if cfg.domain == "avatar":                   # Eq. 3's reference
                self.g_real = copy.deepcopy(g).eval()
                set_requires_grad(self.g_real, False)
            d0 = discriminator_from(init, seg=cfg.disc.seg)
            if d0 is not None and d0.config == cfg.disc:
                d.load_state_dict(d0.state_dict())
                self.d_source = ("G_real checkpoint" if cfg.disc.seg
                                 else "G_real checkpoint (mask branch dropped)")
        g_ema = copy.deepcopy(g).eval()
        set_requires_grad(g_ema, False)
        if resume is not None:
            g.load_state_dict(resume["g"])
            d.load_state_dict(resume["d"])
            g_ema.load_state_dict(resume["g_ema"])
        g, d, g_ema = g.to(self.device), d.to(self.device), g_ema.to(self.device)
        if self.g_real is not None:
            self.g_real.to(self.device)
        self.frozen = frozen_elements(g, cfg.freeze_mode)     # zeroed gradients: Adam leaves them
        freeze_gradients(g, self.frozen)
        if wrap is not None:
            g, d = wrap(g), wrap(d)
        g_mod, d_mod = unwrap(g), unwrap(d)
        g_opt = _adam(g_mod.parameters(), cfg, cfg.path_every, cfg.path_weight)
        d_opt = _adam(d_mod.parameters(), cfg, cfg.r1_every, max(cfg.r1_gamma, cfg.r1_gamma_seg))
        if resume is not None:
            g_opt.load_state_dict(resume["g_optim"])
            d_opt.load_state_dict(resume["d_optim"])
        self.nets = GanNets(g, d, g_ema, g_opt, d_opt, self.g_real)
        self.step = int(resume["step"]) if resume is not None else 0
        self.images_seen = int(resume["images_seen"]) if resume is not None else 0
        self.mean_path_length = torch.tensor(
            float(resume["mean_path_length"]) if resume is not None else 0.0)
        self.sample_z = fixed_z(cfg.n_samples, cfg.generator.style_dim, cfg.seed)

    @property
    def global_batch(self) -> int:
        return self.cfg.worker_batch * self.world_size

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One iteration on a worker batch {"image": (n, H, W, 3) uint8[, "mask": (n, H, W)]}:
        D step, lazy R1, G step (with L_color for domain avatar), lazy path length, EMA."""
        cfg, nets, i = self.cfg, self.nets, self.step
        seed = step_seed(cfg.seed, self.rank, i)
        torch.manual_seed(seed)                         # the render net's noise
        rng = torch.Generator().manual_seed(seed)
        img, seg = to_training_tensors(batch, cfg.generator.num_classes, self.device,
                                       flip=rng if cfg.hflip else None)
        n = img.shape[0]
        if img.shape[-1] != cfg.generator.size:
            raise ValueError(f"batch images are {img.shape[-1]} px, the generator makes "
                             f"{cfg.generator.size} px")
        if not nets.d_mod.config.seg:
            seg = None
        metrics = d_step(nets, img, seg, cfg.mixing, rng)
        r1_weight = cfg.r1_gamma + (cfg.r1_gamma_seg if nets.d_mod.config.seg else 0.0)
        if is_due(i, cfg.r1_every, r1_weight):
            metrics.update(r1_step(nets, img, seg, cfg.r1_gamma, cfg.r1_gamma_seg, cfg.r1_every))
        metrics.update(g_step(nets, n, cfg.mixing, rng, cfg.mask_weight,
                              cfg.lambda_color if cfg.domain == "avatar" else 0.0,
                              cfg.color_temperature, cfg.color_classes,
                              shared_layout=cfg.freeze_mode == "shape"))
        if is_due(i, cfg.path_every, cfg.path_weight):
            pm, self.mean_path_length = path_step(
                nets, max(1, n // cfg.path_batch_shrink), cfg.mixing, rng,
                self.mean_path_length, cfg.path_weight, cfg.path_every, cfg.path_decay)
            metrics.update(pm)
        self.images_seen += n * self.world_size
        ema_update(nets.g_ema, nets.g_mod, ema_beta(cfg.ema_half_life_images, self.global_batch,
                                                    self.images_seen, cfg.ema_rampup))
        self.step += 1
        return metrics

    def payload(self) -> dict[str, Any]:
        """The checkpoint of the current state (see checkpoint.make_payload)."""
        nets, cfg = self.nets, self.cfg
        w_mean = nets.g_ema.mean_latent(cfg.w_mean_samples,
                                        generator=torch.Generator(self.device).manual_seed(0))
        return make_payload(g=nets.g_mod, d=nets.d_mod, g_ema=nets.g_ema, g_opt=nets.g_opt,
                            d_opt=nets.d_opt, step=self.step, images_seen=self.images_seen,
                            mean_path_length=float(self.mean_path_length),
                            run_config=cfg.to_dict(), w_mean=w_mean)

    def sample_png(self) -> bytes:
        """The sample grid (G_real above G_avatar for domain avatar) as PNG bytes."""
        return shards.encode_png(sample_grid(self.nets.g_ema, self.sample_z, self.g_real))


# ---- metrics over a logging window -------------------------------------------------------
class _Window:
    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.t0, self.steps = time.perf_counter(), 0

    def add(self, m: Mapping[str, float]) -> None:
        for k, v in m.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.counts[k] = self.counts.get(k, 0) + 1
        self.steps += 1

    def means(self, world_size: int, device: torch.device) -> dict[str, float]:
        """Window means averaged over workers (every worker must call this at the same step);
        `device` is where the collective runs (CUDA for NCCL)."""
        keys = sorted(self.sums)
        vals = torch.tensor([self.sums[k] / self.counts[k] for k in keys], dtype=torch.float64,
                            device=device)
        if world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.all_reduce(vals)
            vals /= world_size
        out = dict(zip(keys, vals.cpu().tolist()))
        out["it_per_s"] = self.steps / max(time.perf_counter() - self.t0, 1e-9)
        return out


def replica_spread(g: nn.Module, world_size: int) -> float:
    """max - min over workers of the sum of |parameters| (0 when the replicas agree)."""
    total = torch.stack([p.detach().double().abs().sum() for p in g.parameters()]).sum()
    if world_size < 2 or not torch.distributed.is_initialized():
        return 0.0
    out = [torch.zeros_like(total) for _ in range(world_size)]   # on G's device (NCCL: CUDA)
    torch.distributed.all_gather(out, total)
    vals = torch.stack(out)
    return float(vals.max() - vals.min())


# ---- the Ray Train edge ------------------------------------------------------------------
def _say(text: str) -> None:
    """One line on stdout (Ray Train V2 echoes `print` calls twice; plain writes once)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _write_run_sample(out: str, step: int, png: bytes) -> None:
    fs, base = shards.resolve(out)
    shards.write_bytes_atomic(fs, shards.join(base, SAMPLES_DIR, sample_name(step)), png)


def train_loop_per_worker(config: dict) -> None:
    """Ray Train worker function: `config` is GanTrainConfig.to_dict() (resolved), plus
    "resume_from": the newest checkpoint directory the driver found in the run directory (or
    None). A driver killed after a checkpoint was written but before Ray recorded it leaves
    that checkpoint only on disk: the newer of the two is resumed, so no finished step is
    trained again."""
    import ray.train
    import ray.train.torch

    config = dict(config)
    resume_from = config.pop("resume_from", None)
    cfg = GanTrainConfig.from_dict(config).validate().resolved()
    rank, world, device = worker_context(cfg.torch_threads, cfg.use_gpu)
    resume = resume_payload(read_checkpoint, "step", resume_from)

    def wrap(m: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(
            m, move_to_device=device,
            parallel_strategy_kwargs={"forward_sync_buffers": False,
                                      "find_unused_parameters": False})

    trainer = GanTrainer(cfg, device, rank=rank, world_size=world, wrap=wrap, resume=resume)
    shard = ray.train.get_dataset_shard("train")
    batches = epochs(lambda: shard.iter_torch_batches(
        batch_size=cfg.worker_batch, drop_last=True, device="cpu",
        local_shuffle_buffer_size=max(4 * cfg.worker_batch, 64)))
    run_loop(trainer, batches, resumed=resume is not None,
             report=partial(ray_report, dir_name=checkpoint_dir_name))


def run_loop(trainer: GanTrainer, batches: Iterable[Mapping[str, torch.Tensor]], *,
             resumed: bool, report: Callable[[dict[str, Any], str | None, int], None]) -> None:
    """Train until cfg.steps: log every log_every steps (rank 0), write sample grids every
    sample_every steps (rank 0) and report a checkpoint every checkpoint_every steps and at the
    end. `report(metrics, checkpoint_dir or None, step)` is called by every worker."""
    from tqdm.auto import tqdm

    cfg, rank, world = trainer.cfg, trainer.rank, trainer.world_size
    total, start = cfg.total_steps, trainer.step
    if start >= total:
        return
    is_rank0 = rank == 0
    if is_rank0:
        _say(f"[train-generator] domain {cfg.domain}: steps {start} -> {total}, {world} "
             f"worker(s) x batch {cfg.worker_batch}, D from {trainer.d_source}"
             f"{', resumed' if resumed else ''}")
    window, t_start = _Window(), time.perf_counter()
    bar = tqdm(total=total, initial=start, unit="it", desc=f"G_{cfg.domain}",
               disable=not (is_rank0 and cfg.progress), mininterval=2.0)
    try:
        for batch in batches:
            if cfg.fail_at_step is not None and trainer.step == cfg.fail_at_step and not resumed:
                raise InjectedFailure(f"injected failure at step {trainer.step} (fail_at_step)")
            window.add(trainer.train_step(batch))
            s = trainer.step
            bar.update(1)
            last = s >= total
            if s % cfg.log_every == 0 or last or s % cfg.checkpoint_every == 0:
                means = window.means(world, trainer.device)
                window = _Window()
                if is_rank0:
                    text = " ".join(f"{k} {v:.4g}" for k, v in means.items())
                    bar.write(f"[train-generator] step {s}/{total}: {text}", file=sys.stdout)
            if is_rank0 and cfg.sample_every and s % cfg.sample_every == 0:
                _write_run_sample(cfg.out, s, trainer.sample_png())
            if s % cfg.checkpoint_every == 0 or last:
                metrics = {**means, "step": s, "images_seen": trainer.images_seen,
                           "start_step": start, "replica_spread": replica_spread(
                               trainer.nets.g_mod, world),
                           "wall_s": time.perf_counter() - t_start}
                _checkpoint(trainer, metrics, report)
            if last:
                break
    finally:
        bar.close()


def _checkpoint(trainer: GanTrainer, metrics: dict[str, Any],
                report: Callable[[dict[str, Any], str | None, int], None]) -> None:
    step = trainer.step
    if trainer.rank != 0:
        report(metrics, None, step)
        return
    png = trainer.sample_png()
    _write_run_sample(trainer.cfg.out, step, png)
    with tempfile.TemporaryDirectory(prefix="gan-ckpt-") as tmp:
        save_checkpoint(tmp, trainer.payload(), png)
        report(metrics, tmp, step)


__all__ = ["GanTrainer", "InjectedFailure", "replica_spread", "run_loop", "step_seed",
           "train_loop_per_worker"]
