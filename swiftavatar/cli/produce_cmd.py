"""`swiftavatar produce`: paired data (avatar render, realistic face) on Ray (section 3.2)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from swiftavatar.cli import CliError
from swiftavatar.cli.common import add_run_flags, prior_flag
from swiftavatar.production.inversion_config import InversionConfig

# ProduceConfig (and nested InversionConfig / AugmentConfig) fields whose flag is not
# `--<field with dashes>`.
_FLAG_OF = {"g_avatar": "--g-avatar", "g_real": "--g-real", "lambdas": "--lambda-aug",
            "num_augmentations": "--augmentations", "lpips_backbone": "--lpips-backbone",
            "engine_options": "--engine-option"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce", help="make (avatar render, realistic face) pairs by GAN inversion on Ray",
        description="Sample avatar vectors, render them, invert each render into G_avatar "
                    "(Eq. 4-5), draw the realistic face with G_real (Eq. 6) plus semantic "
                    "augmentations (Eq. 7), and write DIR/pairs/part-*.parquet, dropped/, "
                    "errors/, dataset_card.json and figure5.png. Re-running the same command "
                    "resumes: finished shards are kept and never rewritten. Uses the Ray "
                    "cluster at $RAY_ADDRESS (or --ray-address) when given, else a local one.")
    p.add_argument("--engine", required=True,
                   help="engine name (`swiftavatar engines list`), module:attr, or "
                        "grpc://HOST:PORT")
    p.add_argument("--count", type=int, required=True, help="number of vectors to sample")
    p.add_argument("--out", required=True, help="output directory (local path or URI)")
    p.add_argument("--g-avatar", required=True, metavar="CKPT",
                   help="avatar-domain generator: checkpoint file, checkpoint dir, run dir "
                        "or pretrained:NAME (shipped: pretrained:g_avatar_toon_64)")
    p.add_argument("--g-real", required=True, metavar="CKPT",
                   help="realistic-domain generator (same W+ layout as --g-avatar), e.g. "
                        "pretrained:g_real_64")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of vector sampling and augmentation noise (default 0)")
    p.add_argument("--size", type=int, default=None,
                   help="render size in pixels (default: G_avatar's output size)")
    p.add_argument("--shard-size", type=int, default=64, help="samples per shard (default 64)")
    p.add_argument("--prior", default=None, metavar="PRIOR.json|suggested",
                   help="sampling prior: 'suggested' (the engine's) or a JSON file "
                        "(see `swiftavatar render --help`); default uniform")
    p.add_argument("--workers", type=int, default=2,
                   help="inversion actors, most at once (default 2)")
    p.add_argument("--min-workers", type=int, default=None,
                   help="smallest inversion pool; the pool grows onto nodes that join "
                        "(default: --workers)")
    p.add_argument("--cpus-per-worker", type=float, default=0.5,
                   help="CPUs each inversion actor reserves (default 0.5)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="GPUs each inversion actor reserves, fractions allowed (default 0; "
                        "> 0 only on GPU clusters; actors without CUDA fall back to the CPU)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="images inverted together per actor (default 8)")
    p.add_argument("--steps", type=int, default=InversionConfig.steps,
                   help=f"inversion Adam steps (default {InversionConfig.steps}, section 4)")
    p.add_argument("--lambda-s", type=float, default=None, metavar="W",
                   help="weight of the inversion's segmentation term against the engine's "
                        "masks (default: 0.1 for an engine that renders masks, else 0); it "
                        "makes the inverted layout (hats, glasses, hair) the engine's")
    p.add_argument("--lambda-c", type=float, default=1.0, metavar="W",
                   help="weight of the inversion's cross-domain colour term: the realistic "
                        "face's hair, skin, hat and glasses colours against the render's "
                        "(default 1; 0: the paper's Eq. 5 alone)")
    p.add_argument("--augmentations", type=int, default=10,
                   help="semantic augmentations per sample, Eq. 7 (default 10)")
    p.add_argument("--lambda-aug", action="append", default=None, metavar="PART=VALUE",
                   help="lambda_aug of one part (repeatable; replaces the defaults "
                        "background=1.0 hair=0.3 eyeglasses=0.06)")
    p.add_argument("--max-loss", type=float, default=None,
                   help="quality gate: drop pairs whose inversion loss_total exceeds this "
                        "(default: keep all)")
    p.add_argument("--init", default="w_tilde", choices=("w_tilde", "w_mean"),
                   help="inversion start code: w~_mean, the mean over samples without "
                        "glasses (default), or the checkpoint's w_mean")
    p.add_argument("--n-mean", type=int, default=10_000,
                   help="mapped samples for w~_mean (default 10000)")
    p.add_argument("--lpips-net", default="vgg", choices=("vgg", "alex", "squeeze"),
                   help="LPIPS network (default vgg)")
    p.add_argument("--lpips-backbone", default=None, metavar="PATH|torchvision|hed",
                   help="LPIPS trunk weights (default: torchvision cache, else the offline "
                        "HED VGG16 stand-in)")
    add_run_flags(p, verb="produce", dry_run_help="load everything, print the resolved config "
                                                   "and manifest, then exit")
    p.set_defaults(handler=_produce)


def _lambdas(items: list[str] | None) -> dict[str, float] | None:
    if items is None:
        return None
    out: dict[str, float] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        try:
            out[key] = float(raw)
        except ValueError:
            eq = ""
        if not eq or not key:
            raise CliError(f"--lambda-aug takes PART=VALUE with a number, got {item!r}")
    return out


def build_config(args: argparse.Namespace):
    """ProduceConfig from parsed flags; bad values raise CliError naming the flag."""
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig, produce_inversion
    from swiftavatar.production.problems import ConfigProblems
    from swiftavatar.training.checkpoint import CheckpointError, find_checkpoint

    prior = prior_flag(args.prior)
    for flag, path in (("--g-avatar", args.g_avatar), ("--g-real", args.g_real)):
        if "://" not in path:
            try:
                find_checkpoint(path)
            except CheckpointError as err:
                raise CliError(f"{flag}: {err}") from None
    aug: dict[str, Any] = {"num_augmentations": args.augmentations}
    lam = _lambdas(args.lambda_aug)
    if lam is not None:
        aug["lambdas"] = lam
    bad: list[tuple[str, str]] = []
    nested: dict[str, Any] = {}
    for name, make, kw in (
            ("inversion", produce_inversion, dict(steps=args.steps, lambda_s=args.lambda_s,
                                                  lambda_c=args.lambda_c, n_mean=args.n_mean)),
            ("augment", AugmentConfig, aug)):
        try:
            nested[name] = make(**kw)
        except ConfigProblems as err:
            bad += err.problems
    config = None
    if not bad:
        config = ProduceConfig(
            engine=args.engine, out=args.out, g_avatar=args.g_avatar, g_real=args.g_real,
            count=args.count, seed=args.seed, size=args.size, shard_size=args.shard_size,
            prior=prior, init=args.init, max_loss=args.max_loss, lpips_net=args.lpips_net,
            lpips_backbone=args.lpips_backbone, workers=args.workers,
            min_workers=args.min_workers, cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=args.gpus_per_worker, batch_size=args.batch_size,
            render_batch=args.render_batch, max_shards=args.max_shards, overwrite=args.overwrite,
            progress=not args.no_progress, **nested)
        bad = config.problems()
    if bad:
        raise CliError("; ".join(f"{_FLAG_OF.get(name, '--' + name.replace('_', '-'))} {msg}"
                                 for name, msg in bad))
    return config


def _produce(args: argparse.Namespace) -> int:
    from actors.produce_stage import ProduceStageError, run_produce_stage
    from swiftavatar.production.plan import plan_produce

    config = build_config(args)
    if args.dry_run:
        plan = plan_produce(config)
        resolved = dataclasses.replace(config, inversion=plan.job.inversion)  # lambda_s set
        print(json.dumps({"config": resolved.to_dict(), "manifest": plan.manifest,
                          "shards": plan.num_shards, "lpips": plan.lpips_info,
                          "w_init": plan.w_init}, indent=2, default=str))
        return 0
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address  # read by actors.session.ray_session
    try:
        card = run_produce_stage(config)
    except ProduceStageError as e:
        raise CliError(str(e)) from None
    c = card["counts"]
    print(f"{c['pairs_written']} pair rows from {c['samples_kept']} samples "
          f"({c['dropped_by_gate']} dropped by the gate, {c['engine_errors']} engine errors) "
          f"in {config.out}: {c['shards_done']}/{c['shards_total']} shards, LPIPS backbone "
          f"{card['lpips']['backbone']}, {card['this_run']['wall_s']:.1f} s")
    if not card["complete"]:
        print(f"{c['shards_total'] - c['shards_done']} shards left: re-run the same command "
              f"to continue", file=sys.stderr)
    return 0
