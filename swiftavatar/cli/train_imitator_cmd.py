"""`swiftavatar train-imitator`: F2P's imitator (a generator from an avatar vector to the
engine's image) on an engine's renders, on Ray Train, with its held-out accuracy report."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import (add_config_flags, add_gpu_flag, add_ray_flags,
                                   config_from_args, gpu_fields)

FROM_PRESET = "the preset's"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-imitator", help="train F2P's imitator of an engine on its renders (Ray Train)",
        description="Train the imitator of F2P (Shi et al. 2019): a DCGAN-style generator "
                    "from an avatar vector (continuous parameters in [0, 1], discrete ones "
                    "one-hot) to the engine's image, with an L1 loss, on a rendered dataset "
                    "(`swiftavatar render`), data-parallel on Ray Train with the rows read "
                    "through Ray Data. Writes OUT/config.json, OUT/train/checkpoint_<epoch>/, "
                    "OUT/summary.json (L1 and LPIPS to held-out renders) and OUT/samples.png "
                    "(held-out render | imitator); re-running the same command resumes (raise "
                    "--epochs to train longer). Uses the Ray cluster at $RAY_ADDRESS (or "
                    "--ray-address) when given, else a local one.")
    p.defer(_add_flags)
    p.set_defaults(handler=_train)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.imitator.config import ImitatorTrainConfig as Config

    add_config_flags(p, Config, ("data", "out"))
    add_config_flags(p, Config, ("epochs", "batch", "lr", "lr_step_epochs", "val_fraction",
                                 "perceptual_weight", "seed", "cpus_per_worker",
                                 "torch_threads", "num_workers"), from_base=FROM_PRESET)
    p.add_argument("--image-size", type=int, default=None,
                   help="the imitator's output side in px, a power of two (default: "
                        "the preset's, 64)")
    p.add_argument("--channels", type=int, default=None,
                   help="channels of the generator's first 4 x 4 map (default: the preset's, "
                        "256)")
    add_config_flags(p, Config, ("report_lpips",))
    add_gpu_flag(p, "GPUs per worker (default 0: CPU; > 0 trains on CUDA, GPU clusters only)")
    add_ray_flags(p, Config, dry_run_help="print the resolved config, the renders per split "
                                          "and the checkpoint a run would resume from, and "
                                          "exit")


def build_config(args: argparse.Namespace):
    """ImitatorTrainConfig from the flags (the embedded preset underneath); bad values raise
    CliError naming the flag."""
    from swiftavatar.imitator.config import ImitatorTrainConfig

    base = ImitatorTrainConfig.embedded()
    model = base.model
    for flag, name in (("--image-size", "image_size"), ("--channels", "channels")):
        value = getattr(args, name)
        if value is not None:
            model = dataclasses.replace(model, **{name: value})
            bad = [m for k, m in model.problems() if k == name]
            if bad:
                raise CliError(f"{flag} {bad[0]}")
    return config_from_args(ImitatorTrainConfig, args, base=base, model=model,
                            **gpu_fields(args.gpus_per_worker))


def _train(args: argparse.Namespace) -> int:
    from actors.train_imitator import (ImitatorTrainingError, plan_data, resolve_config,
                                       run_imitator_training)
    from swiftavatar.estimator.data import EstimatorDataError
    from swiftavatar.imitator.checkpoint import list_checkpoints
    from swiftavatar.imitator.data import open_renders
    from swiftavatar.rundir import RunMismatchError

    config = build_config(args)
    try:
        open_renders(config.data)
    except (EstimatorDataError, FileNotFoundError) as e:
        raise CliError(f"--data: {e}") from None
    if args.dry_run:
        resolved = resolve_config(config)
        found = list_checkpoints(config.out) if os.path.isdir(config.out) else {}
        print(json.dumps({"config": resolved.to_dict(), "data": plan_data(resolved),
                          "resume_from_epoch": max(found) if found else None}, indent=2))
        return 0
    try:
        s = run_imitator_training(config, ray_address=args.ray_address)
    except (ImitatorTrainingError, RunMismatchError, ValueError) as e:
        raise CliError(str(e)) from None
    r = s["report"]
    shown = " ".join(f"{k} {r[k]:.4f} +- {r[k + '_se']:.4f}" for k in ("l1", "lpips") if k in r)
    print(f"trained the imitator to epoch {s['epoch']}/{s['epochs']} in {s['wall_s']:.1f} s; "
          f"held-out ({r['rows']} renders): {shown}; checkpoint {s['checkpoint']}; samples "
          f"{s['samples']}")
    return 0
