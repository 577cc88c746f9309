"""Generator training on Ray Train (paper section 3.1): pretrain G_real on the realistic face
domain, or finetune G_avatar from G_real on engine renders. Same worker function for both
(`swiftavatar.training.gan_loop.train_loop_per_worker`), data-parallel with DDP (gloo on CPU,
NCCL on GPU) through Ray Train's prepare_model.

A run lives in one directory (`out`): config.json, samples/, data/ (faces it rendered or
converted), train/ (Ray Train's run: checkpoint_<step>/ directories) and summary.json.
Running again with the same `out` resumes from the last checkpoint (Ray Train V2 restores the
run by name and storage path); only fields that define the run (IDENTITY_FIELDS) must match,
so `steps` can grow. A worker that dies is restarted from the last checkpoint up to
`max_failures` times. The directory is a `swiftavatar.rundir.RunDir`: a second driver into
the same `out` is refused while the first holds its lock.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, replace
from typing import Any

from swiftavatar import shards
from swiftavatar.rundir import RunDir, RunMismatchError
from swiftavatar.training.checkpoint import (
    CONFIG_FILE, RAY_RUN_NAME, SUMMARY_FILE, discriminator_from, find_checkpoint,
    generator_config_of, read_checkpoint)
from swiftavatar.training.gan_config import IDENTITY_FIELDS, GanTrainConfig, \
    embedded_discriminator
from swiftavatar.training.gan_data import (DataPlan, build_dataset, plan_data, prepare_face_dir,
                                           shard_files, write_face_shard)


class GanTrainingError(RuntimeError):
    """Training stopped; finished checkpoints are kept and a re-run resumes from the last."""


@dataclass
class TrainSummary:
    out: str
    domain: str
    step: int
    steps: int
    images_seen: int
    checkpoint: str | None
    wall_s: float
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _newest_checkpoint(out: str) -> str | None:
    """The newest checkpoint_<step>/ in the run directory (Ray's own record may lag it when a
    driver was killed just after the checkpoint was written)."""
    from swiftavatar.training.checkpoint import list_checkpoints

    if "://" in out or not os.path.isdir(out):
        return None
    found = list_checkpoints(out)
    return str(found[max(found)]) if found else None


def _abs(path: str | None) -> str | None:
    if path is None or "://" in path:
        return path
    return os.path.abspath(os.path.expanduser(path))


def resolve_config(cfg: GanTrainConfig) -> GanTrainConfig:
    """Validate and fill in everything a run records: absolute paths, steps, mask weight and,
    for domain avatar, the generator config of the G_real checkpoint (the checkpoint file
    itself, so a resumed run keeps starting from the same G_real) and an image-only D shaped
    like G_real's; domain real with `init` (a G_real finetune) takes both from the checkpoint."""
    cfg.validate()
    cfg = replace(cfg, out=_abs(cfg.out), data=_abs(cfg.data))
    if cfg.init:                         # domain avatar, or a G_real finetune
        init_file = find_checkpoint(cfg.init)
        payload = read_checkpoint(init_file)
        gen = generator_config_of(payload)
        seg = cfg.mask_discriminator
        if seg is None:                  # real: faces have masks; avatar: the engine's masks,
            seg = cfg.domain == "real" or _renders_have_masks(cfg.data)   # where it has them
        disc = cfg.discriminator
        if disc is None:
            d0 = discriminator_from(payload, seg=seg)
            disc = d0.config if d0 is not None else embedded_discriminator(gen.size, seg=seg)
        cfg = replace(cfg, init=str(init_file.resolve()), generator=gen, discriminator=disc,
                      mask_discriminator=disc.seg)
    return cfg.validate().resolved()


def _renders_have_masks(data: str | None) -> bool:
    from swiftavatar.shards import RenderedDataset

    try:
        return bool(data) and RenderedDataset(data).schema.supports_masks
    except FileNotFoundError:
        return False                     # plan_data names the problem


def check_run_dir(cfg: GanTrainConfig, rundir: RunDir | None = None) -> bool:
    """Write out/config.json, or check the one there (a re-run: IDENTITY_FIELDS must match).
    True when resuming."""
    rd = rundir or RunDir(cfg.out, "train-generator")
    return rd.check_identity(CONFIG_FILE, cfg.to_dict(), keys=IDENTITY_FIELDS) is not None


def check_resources(cfg: GanTrainConfig) -> None:
    """Refuse requests the Ray cluster cannot place (they would wait forever)."""
    from actors.resources import check_training_resources

    check_training_resources(cfg)


def prepare_data(cfg: GanTrainConfig, progress: bool = True) -> DataPlan:
    """Plan the data and write any missing face shards (one Ray task per shard)."""
    import ray
    from tqdm.auto import tqdm

    plan = plan_data(cfg.domain, cfg.data, cfg.out, cfg.generator.size, cfg.real_count,
                     cfg.real_seed, cfg.data_shard_size,
                     avatar_masks=cfg.domain == "avatar" and cfg.disc.seg,
                     real_faces=cfg.real_faces)
    if plan.spec is not None:
        todo = prepare_face_dir(plan)
        if todo:
            task = ray.remote(num_cpus=1)(write_face_shard)
            pending = [task.remote(plan.directory, plan.spec, k) for k in todo]
            with tqdm(total=len(todo), unit="shard", desc=f"faces -> {plan.directory}",
                      disable=not progress) as bar:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    ray.get(done)
                    bar.update(len(done))
    n = sum(shards.parquet_num_rows(*shards.resolve(p)) for p in shard_files(plan.directory))
    if n < cfg.batch:
        raise ValueError(f"the training data has {n} images, fewer than one batch "
                         f"({cfg.batch}): render more, or lower --batch")
    return plan


def run_training(cfg: GanTrainConfig, ray_address: str | None = None) -> TrainSummary:
    """Train (or resume) the run `cfg` describes; uses the running Ray instance, else the
    cluster at `ray_address`, else starts one (see actors.session.ray_session)."""
    t0 = time.perf_counter()
    cfg = resolve_config(cfg)
    rd = RunDir(cfg.out, "train-generator")
    with rd.lock():   # a second driver into `out` is refused, naming this one's pid
        summary = _train(cfg, rd, t0, ray_address)
        rd.write_json(SUMMARY_FILE, summary.to_dict(), default=str)
    return summary


def _train(cfg: GanTrainConfig, rd: RunDir, t0: float, ray_address: str | None) -> TrainSummary:
    from actors.session import ray_session
    from actors.trainer import fit_trainer, quiet_ray_data
    from swiftavatar.training.gan_loop import train_loop_per_worker

    with ray_session(ray_address, log_dir=cfg.out, relay=("[train-generator] ",)):
        check_run_dir(cfg, rd)
        check_resources(cfg)
        plan = prepare_data(cfg, progress=cfg.progress)
        quiet_ray_data()                            # rank 0 shows the training bar
        datasets = {"train": build_dataset(plan.directory, cfg.generator.size, plan.masks,
                                           cfg.data_cpus)}
        result = fit_trainer(train_loop_per_worker,
                             {**cfg.to_dict(), "resume_from": _newest_checkpoint(cfg.out)},
                             cfg, datasets, name=RAY_RUN_NAME, error=GanTrainingError)
    metrics = dict(result.metrics or {})
    summary = TrainSummary(
        out=cfg.out, domain=cfg.domain, step=int(metrics.get("step", 0)), steps=cfg.total_steps,
        images_seen=int(metrics.get("images_seen", 0)),
        checkpoint=result.checkpoint.path if result.checkpoint is not None else None,
        wall_s=round(time.perf_counter() - t0, 3), metrics=metrics)
    return summary


__all__ = ["GanTrainingError", "RunMismatchError", "TrainSummary", "check_resources",
           "check_run_dir", "prepare_data", "resolve_config", "run_training"]
