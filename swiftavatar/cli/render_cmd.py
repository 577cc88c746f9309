"""`swiftavatar render`: render a sharded dataset of (avatar vector, image, mask) on Ray."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swiftavatar.cli import CliError
from swiftavatar.cli.common import prior_flag
from swiftavatar.cli.flags import add_config_flags, add_ray_flags, config_from_args, key_values

# RenderConfig's flags, in the order `--help` lists them (the run flags follow).
_FLAGS = ("engine", "out", "count", "vectors", "seed", "size", "shard_size", "prior",
          "engine_options", "workers", "min_workers", "cpus_per_worker", "gpus_per_worker")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="render sampled (or given) avatar vectors into a Parquet dataset on Ray",
        description="Sample avatar vectors with a fixed seed, render them with an engine in a "
                    "Ray actor pool, and write DIR/shards/part-*.parquet (+ errors/, "
                    "contact_sheet.png, summary.json). Re-running the same command resumes: "
                    "finished shards are kept, and only the vectors the engine failed on "
                    "(errors/) are tried again (--no-retry-errors: not even those). Exit code "
                    "1 when no sample rendered or, with --vectors, when any given vector "
                    "failed (the good ones are still written). Uses the Ray cluster at "
                    "$RAY_ADDRESS (or --ray-address) when given, else starts a local one.")
    p.defer(_add_flags)
    p.set_defaults(handler=_render)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from actors.render_stage import RenderConfig

    add_config_flags(p, RenderConfig, _FLAGS, defaults={"count": None, "size": None})
    add_ray_flags(p, RenderConfig, ("render_batch", "max_shards", "retry_errors", "overwrite"),
                  dry_run_help="print the resolved config and the dataset manifest, then exit")


def _default_size(engine: str, options: dict[str, Any]) -> int:
    """The engine's `default_size`, what `--size` defaults to (the dataset records it, so a
    resume without --size matches)."""
    from swiftavatar.engines.registry import EngineSpec

    with EngineSpec.parse(engine, options).build() as built:
        return int(built.default_size)


def build_config(args: argparse.Namespace):
    """RenderConfig from parsed flags; bad values raise CliError naming the flag."""
    from actors.render_stage import RenderConfig

    if args.count is None and args.vectors is None:
        raise CliError("give --count N (vectors to sample) or --vectors FILE.jsonl")
    if args.count is not None and args.vectors is not None:
        raise CliError("--count and --vectors exclude each other: with --vectors the count "
                       "is the file's number of lines")
    prior = prior_flag(args.prior)
    if args.vectors is not None and "://" not in args.vectors and not Path(args.vectors).is_file():
        raise CliError(f"--vectors: no such file {args.vectors}")
    fixed: dict[str, Any] = {"count": args.count if args.count is not None else 1}
    if args.size is None:  # the engine's own size; the dataset records the resolved one
        fixed["size"] = _default_size(args.engine,
                                      key_values("--engine-option", args.engine_options))
    return config_from_args(RenderConfig, args, prior=prior, **fixed)


def _render(args: argparse.Namespace) -> int:
    from actors.render_stage import RenderStageError, plan_render, run_render_stage

    config = build_config(args)
    if args.dry_run:
        plan = plan_render(config)
        shown = config.to_dict()
        shown["count"] = plan.count  # with --vectors: the file's line count
        print(json.dumps({"config": shown, "manifest": plan.manifest,
                          "shards": plan.num_shards}, indent=2, default=str))
        return 0
    try:
        summary = run_render_stage(config, ray_address=args.ray_address)
    except RenderStageError as e:
        raise CliError(str(e)) from None
    s = summary
    print(f"rendered {s.rendered} of {s.samples} samples ({s.errors} errors) into {s.out}: "
          f"{s.shards_done}/{s.shards_total} shards done, {s.shards_written} written by this run, "
          f"{s.wall_s:.1f} s")
    if s.recovered:
        print(f"{s.recovered} vectors from errors/ of an earlier run rendered this time")
    if not s.complete:
        print(f"{s.shards_total - s.shards_done} shards left: re-run the same command to "
              f"continue", file=sys.stderr)
    elif s.rendered == 0:
        print("no sample rendered: see the errors table in "
              f"{s.out}/errors/", file=sys.stderr)
        return 1
    elif config.vectors is not None and s.errors:
        # given vectors are the user's input: any that failed is an error a script must see
        # (as in `predict`); the good ones are written all the same
        print(f"{s.errors} of the given vectors failed: see the errors table in "
              f"{s.out}/errors/", file=sys.stderr)
        return 1
    return 0
