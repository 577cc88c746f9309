"""`swiftavatar produce`: paired data (avatar render, realistic face) on Ray (section 3.2)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from swiftavatar.cli import CliError
from swiftavatar.cli.common import prior_flag
from swiftavatar.cli.flags import add_config_flags, add_ray_flags, config_from_args, named

# The flags in the order `--help` lists them: (config, its fields); ProduceConfig's run flags
# (add_ray_flags) follow.
_SECTIONS = (
    ("produce", ("engine", "count", "out", "g_avatar", "g_real", "seed", "size", "shard_size",
                 "prior", "workers", "min_workers", "cpus_per_worker", "gpus_per_worker",
                 "batch_size")),
    ("inversion", ("steps", "lambda_s", "lambda_c")),
    ("augment", ("num_augmentations", "lambdas")),
    ("produce", ("max_loss", "init")),
    ("inversion", ("n_mean",)),
    ("produce", ("lpips_net", "lpips_backbone")),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce", help="make (avatar render, realistic face) pairs by GAN inversion on Ray",
        description="Sample avatar vectors, render them, invert each render into G_avatar "
                    "(Eq. 4-5), draw the realistic face with G_real (Eq. 6) plus semantic "
                    "augmentations (Eq. 7), and write DIR/pairs/part-*.parquet, dropped/, "
                    "errors/, dataset_card.json and figure5.png. Re-running the same command "
                    "resumes: finished shards are kept and never rewritten. Uses the Ray "
                    "cluster at $RAY_ADDRESS (or --ray-address) when given, else a local one.")
    p.defer(_add_flags)
    p.set_defaults(handler=_produce)


def _classes() -> dict[str, type]:
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig
    from swiftavatar.production.inversion_config import InversionConfig

    return {"produce": ProduceConfig, "inversion": InversionConfig, "augment": AugmentConfig}


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.production.config import produce_inversion

    classes = _classes()
    # production's Eq. 5 defaults (the segmentation and colour terms), not InversionConfig's
    inversion = dataclasses.asdict(produce_inversion())
    for section, names in _SECTIONS:
        add_config_flags(p, classes[section], names,
                         defaults=inversion if section == "inversion" else None)
    add_ray_flags(p, classes["produce"], ("render_batch", "max_shards", "overwrite"),
                  dry_run_help="load everything, print the resolved config and manifest, "
                               "then exit")


def _lambdas(parts: dict[str, Any]) -> dict[str, float]:
    """--lambda-aug's PART=VALUE items: numbers; none given keeps the paper's lambdas."""
    from swiftavatar.production.augment import AugmentConfig

    if not parts:
        return AugmentConfig().lambdas
    for key, value in parts.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raw = value if isinstance(value, str) else json.dumps(value)  # as it was typed
            raise CliError(f"--lambda-aug takes PART=VALUE with a number, got '{key}={raw}'")
    return {key: float(value) for key, value in parts.items()}


def build_config(args: argparse.Namespace):
    """ProduceConfig from parsed flags; bad values raise CliError naming the flag."""
    from swiftavatar.production.problems import ConfigProblems
    from swiftavatar.training.checkpoint import CheckpointError, find_checkpoint

    classes = _classes()
    prior = prior_flag(args.prior)
    for flag, path in (("--g-avatar", args.g_avatar), ("--g-real", args.g_real)):
        if "://" not in path:
            try:
                find_checkpoint(path)
            except CheckpointError as err:
                raise CliError(f"{flag}: {err}") from None
    bad: list[str] = []
    nested: dict[str, Any] = {}
    for name, convert in (("inversion", None), ("augment", {"lambdas": _lambdas})):
        try:  # the nested configs check themselves when made
            nested[name] = config_from_args(classes[name], args, convert=convert)
        except ConfigProblems as err:
            bad.append(named(classes[name], err.problems))
    if bad:
        raise CliError("; ".join(bad))
    return config_from_args(classes["produce"], args, prior=prior, **nested)


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
    try:
        card = run_produce_stage(config, ray_address=args.ray_address)
    except ProduceStageError as e:
        raise CliError(str(e)) from None
    c = card["counts"]
    print(f"{c['pairs_written']} pair rows from {c['samples_kept']} samples "
          f"({c['dropped_by_gate']} dropped by the gate, {c['engine_errors']} engine errors) "
          f"in {config.out}: {c['shards_done']}/{c['shards_total']} shards, LPIPS backbone "
          f"{card['lpips']['backbone']}, {card['this_run']['wall_s']:.1f} s")
    if card.get("correspondence"):       # the stage records it; the command shows it
        from swiftavatar.evaluation.correspondence import CorrespondenceReport

        report = CorrespondenceReport.from_dict(card["correspondence"]["report"])
        print(report.table(), file=sys.stderr)
    if not card["complete"]:
        print(f"{c['shards_total'] - c['shards_done']} shards left: re-run the same command "
              f"to continue", file=sys.stderr)
    return 0
