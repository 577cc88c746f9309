"""`swiftavatar train-generator`: pretrain G_real or finetune G_avatar on Ray Train (Eq. 1-3)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from swiftavatar.cli import CliError

# GanTrainConfig fields whose flag is not `--<field with dashes>`.
_FLAG_OF = {"num_workers": "--workers", "use_gpu": "--gpus-per-worker",
            "device": "--gpus-per-worker", "generator": "--size", "discriminator": "--size",
            "real_count": "--real-count", "out": "--out", "init": "--init", "data": "--data"}


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
    p.add_argument("--domain", required=True, choices=("real", "avatar"),
                   help="real: pretrain G_real; avatar: finetune G_avatar from --init")
    p.add_argument("--out", required=True, metavar="RUNDIR",
                   help="run directory (created; an existing run there is resumed)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="avatar: output directory of `swiftavatar render` (required); real: a "
                        "face folder (images/ + masks/) or a directory of face shards/*.parquet "
                        "(default: procedural faces rendered into RUNDIR/data)")
    p.add_argument("--init", default=None, metavar="G_REAL_CKPT",
                   help="avatar: the G_real checkpoint to start from (a checkpoint.pt, a "
                        "checkpoint directory, a G_real run directory, or pretrained:g_real_64, "
                        "the shipped one); required for avatar")
    p.add_argument("--steps", type=int, default=None,
                   help="total training iterations (default: 20000 real, 2000 avatar)")
    p.add_argument("--batch", type=int, default=16,
                   help="global batch size, split evenly over the workers (default 16)")
    p.add_argument("--size", type=int, default=64, choices=(64, 128),
                   help="real: image size of the embedded generator (default 64); avatar uses "
                        "G_real's size")
    p.add_argument("--workers", type=int, default=1,
                   help="Ray Train workers, data-parallel (default 1)")
    p.add_argument("--cpus-per-worker", type=float, default=0.5,
                   help="CPUs each worker reserves (default 0.5)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="GPUs each worker reserves; > 0 trains on CUDA with NCCL (default 0)")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch threads per worker (default 0: Ray's setting, its CPU share)")
    p.add_argument("--lambda-color", type=float, default=5.0,
                   help="weight of the colour matching loss, Eq. 3 (avatar only; default 5)")
    p.add_argument("--freeze", choices=("shape", "none"), default=None,
                   help="avatar: 'shape' (default) trains only texture and render net, so "
                        "G_avatar keeps G_real's layout for every code (hats, glasses and hair "
                        "stay where G_real puts them); 'none' finetunes every weight (the "
                        "paper's setting)")
    p.add_argument("--mask-discriminator", choices=("auto", "yes", "no"), default="auto",
                   help="avatar: the discriminator also sees the engine's masks; auto "
                        "(default): when the renders carry masks")
    p.add_argument("--ema-rampup", type=float, default=None, metavar="SHARE",
                   help="cap G_ema's half-life at SHARE of the images seen (StyleGAN2-ADA's "
                        "ramp; e.g. 0.05 for a finetune of a few thousand images, where the "
                        "default 10k-image half-life leaves G_ema close to its start)")
    p.add_argument("--lr", type=float, default=0.002, help="Adam learning rate (default 0.002)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--real-count", type=int, default=10_000,
                   help="real without --data: procedural faces to render (default 10000)")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="steps between checkpoints (default 1000; one is always written at "
                        "the end)")
    p.add_argument("--sample-every", type=int, default=500,
                   help="steps between extra sample grids in RUNDIR/samples (default 500; 0: "
                        "only with checkpoints)")
    p.add_argument("--log-every", type=int, default=50,
                   help="steps between loss log lines (default 50)")
    p.add_argument("--max-failures", type=int, default=2,
                   help="worker failures to recover from by restarting from the last "
                        "checkpoint (default 2)")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to use (default $RAY_ADDRESS, else a new local one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config and where the data comes from, then exit")
    p.set_defaults(handler=_train)


def _flag(name: str) -> str:
    return _FLAG_OF.get(name, "--" + name.replace("_", "-"))


def build_config(args: argparse.Namespace):
    """GanTrainConfig from parsed flags; bad values raise CliError naming the flag."""
    from swiftavatar.training.gan_config import GanTrainConfig, embedded_generator

    if args.domain == "avatar" and not args.init:
        raise CliError("--init is required for --domain avatar: G_avatar starts from a G_real "
                       "checkpoint (train one with --domain real)")
    if args.domain == "avatar" and not args.data:
        raise CliError("--data is required for --domain avatar: a dataset directory made by "
                       "`swiftavatar render`")
    if args.domain == "real" and args.init:
        raise CliError("--init applies to --domain avatar only")
    if args.gpus_per_worker < 0:
        raise CliError(f"--gpus-per-worker must be >= 0, got {args.gpus_per_worker}")
    use_gpu = args.gpus_per_worker > 0
    config = GanTrainConfig(
        domain=args.domain, out=args.out, data=args.data, init=args.init, steps=args.steps,
        batch=args.batch, lr=args.lr, lambda_color=args.lambda_color, seed=args.seed,
        freeze=args.freeze, ema_rampup=args.ema_rampup,
        mask_discriminator={"auto": None, "yes": True, "no": False}[args.mask_discriminator],
        generator=embedded_generator(args.size), real_count=args.real_count,
        checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
        log_every=args.log_every, num_workers=args.workers,
        cpus_per_worker=args.cpus_per_worker, use_gpu=use_gpu,
        device="cuda" if use_gpu else "cpu",
        gpus_per_worker=args.gpus_per_worker if use_gpu else 1.0,
        torch_threads=args.torch_threads, max_failures=args.max_failures,
        progress=not args.no_progress and sys.stderr.isatty())
    bad = config.problems()
    if bad:
        raise CliError("; ".join(f"{_flag(name)} {msg}" for name, msg in bad))
    return config


def _train(args: argparse.Namespace) -> int:
    from actors.train_generator import GanTrainingError, resolve_config, run_training
    from swiftavatar.training.checkpoint import list_checkpoints
    from swiftavatar.training.gan_data import plan_data

    config = build_config(args)
    if args.dry_run:
        resolved = resolve_config(config)
        plan = plan_data(resolved.domain, resolved.data, resolved.out, resolved.generator.size,
                         resolved.real_count, resolved.real_seed, resolved.data_shard_size,
                         avatar_masks=resolved.domain == "avatar" and resolved.disc.seg)
        found = list_checkpoints(resolved.out) if os.path.isdir(resolved.out) else {}
        print(json.dumps({
            "config": resolved.to_dict(),
            "data": {"directory": plan.directory, "masks": plan.masks,
                     "writes": None if plan.spec is None else plan.spec.manifest()},
            "resume_from_step": max(found) if found else None,
        }, indent=2, default=str))
        return 0
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address  # read by actors.session.ray_session
    try:
        s = run_training(config)
    except GanTrainingError as e:
        raise CliError(str(e)) from None
    print(f"trained G_{s.domain} to step {s.step}/{s.steps} ({s.images_seen} images) in "
          f"{s.wall_s:.1f} s; checkpoint {s.checkpoint}; samples in {s.out}/samples")
    return 0
