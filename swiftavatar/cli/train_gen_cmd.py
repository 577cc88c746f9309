"""`swiftavatar train-generator`: pretrain G_real or finetune G_avatar on Ray Train (Eq. 1-3)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import (add_config_flags, add_gpu_flag, add_ray_flags,
                                   config_from_args, gpu_fields)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-generator",
        help="train a dual-domain generator: G_real on faces, or G_avatar from G_real on renders",
        description="Train a SemanticStyleGAN generator on Ray Train (DDP over --workers). "
                    "--domain real pretrains G_real on the realistic face domain (image + mask "
                    "discriminator; procedural faces unless --data names a face folder). "
                    "--domain avatar finetunes G_avatar from the G_real checkpoint --init on a "
                    "dataset from `swiftavatar render` (image-only discriminator plus the colour "
                    "matching loss, paper Eq. 3). Writes RUNDIR/config.json, samples/, train/"
                    "checkpoint_*/ and summary.json; re-running the same command resumes from "
                    "the last checkpoint (raise --steps to train longer).")
    p.defer(_add_flags)
    p.set_defaults(handler=_train)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.training.gan_config import GanTrainConfig

    add_config_flags(p, GanTrainConfig, ("domain", "out", "data", "init", "steps", "batch"))
    p.add_argument("--size", type=int, default=64, choices=(64, 128),
                   help="real: image size of the embedded generator (default 64); avatar uses "
                        "G_real's size")
    add_config_flags(p, GanTrainConfig, ("num_workers", "cpus_per_worker"))
    add_gpu_flag(p, "GPUs each worker reserves; > 0 trains on CUDA with NCCL (default 0)")
    add_config_flags(p, GanTrainConfig, (
        "torch_threads", "lambda_color", "freeze", "mask_discriminator", "ema_rampup", "lr",
        "seed", "real_count", "real_faces", "checkpoint_every", "sample_every", "log_every",
        "max_failures"),
        defaults={"max_failures": 2})
    add_ray_flags(p, GanTrainConfig, dry_run_help="print the resolved config and where the "
                                                  "data comes from, then exit")


def build_config(args: argparse.Namespace):
    """GanTrainConfig from parsed flags; bad values raise CliError naming the flag."""
    from swiftavatar.training.gan_config import GanTrainConfig, embedded_generator

    if args.domain == "avatar" and not args.init:
        raise CliError("--init is required for --domain avatar: G_avatar starts from a G_real "
                       "checkpoint (train one with --domain real)")
    if args.domain == "avatar" and not args.data:
        raise CliError("--data is required for --domain avatar: a dataset directory made by "
                       "`swiftavatar render`")
    return config_from_args(GanTrainConfig, args, generator=embedded_generator(args.size),
                            progress=args.progress and sys.stderr.isatty(),
                            **gpu_fields(args.gpus_per_worker))


def _train(args: argparse.Namespace) -> int:
    from actors.train_generator import GanTrainingError, resolve_config, run_training
    from swiftavatar.training.checkpoint import list_checkpoints
    from swiftavatar.training.gan_data import plan_data

    config = build_config(args)
    if args.dry_run:
        resolved = resolve_config(config)
        plan = plan_data(resolved.domain, resolved.data, resolved.out, resolved.generator.size,
                         resolved.real_count, resolved.real_seed, resolved.data_shard_size,
                         avatar_masks=resolved.domain == "avatar" and resolved.disc.seg,
                         real_faces=resolved.real_faces)
        found = list_checkpoints(resolved.out) if os.path.isdir(resolved.out) else {}
        print(json.dumps({
            "config": resolved.to_dict(),
            "data": {"directory": plan.directory, "masks": plan.masks,
                     "writes": None if plan.spec is None else plan.spec.manifest()},
            "resume_from_step": max(found) if found else None,
        }, indent=2, default=str))
        return 0
    try:
        s = run_training(config, ray_address=args.ray_address)
    except GanTrainingError as e:
        raise CliError(str(e)) from None
    print(f"trained G_{s.domain} to step {s.step}/{s.steps} ({s.images_seen} images) in "
          f"{s.wall_s:.1f} s; checkpoint {s.checkpoint}; samples in {s.out}/samples")
    return 0
