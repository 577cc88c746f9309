"""`swiftavatar render`: render a sharded dataset of (avatar vector, image, mask) on Ray."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from swiftavatar.cli import CliError
from swiftavatar.cli.common import add_run_flags, check_config, prior_flag

# RenderConfig fields whose flag is not `--<field with dashes>`.
_FLAG_OF = {"engine_options": "--engine-option"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="render sampled (or given) avatar vectors into a Parquet dataset on Ray",
        description="Sample avatar vectors with a fixed seed, render them with an engine in a "
                    "Ray actor pool, and write DIR/shards/part-*.parquet (+ errors/, "
                    "contact_sheet.png, summary.json). Re-running the same command resumes: "
                    "finished shards are kept and never rewritten. Uses the Ray cluster at "
                    "$RAY_ADDRESS (or --ray-address) when given, else starts a local one.")
    p.add_argument("--engine", required=True,
                   help="engine name (`swiftavatar engines list`), module:attr, or "
                        "grpc://HOST:PORT")
    p.add_argument("--out", required=True, help="output directory (local path or s3://... URI)")
    p.add_argument("--count", type=int, default=None,
                   help="number of vectors to sample (required unless --vectors)")
    p.add_argument("--vectors", default=None, metavar="FILE.jsonl",
                   help="render these vectors instead of sampling: one JSON object per line, "
                        "an AvatarVector JSON or a plain {parameter: value} object; bad lines "
                        "go to the errors table")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--size", type=int, default=None,
                   help="render size in pixels (default: the engine's default_size, 256 for "
                        "toon and avataaars)")
    p.add_argument("--shard-size", type=int, default=256, help="rows per shard (default 256)")
    p.add_argument("--prior", default=None, metavar="PRIOR.json|suggested",
                   help="sampling prior: 'suggested' (the engine's recommended prior), or a "
                        "JSON file {continuous: uniform|normal, normal_width, "
                        "discrete_weights: {param: {option: weight}}}")
    p.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE",
                   help="engine constructor option (VALUE parsed as JSON when it parses); "
                        "repeatable")
    p.add_argument("--workers", type=int, default=2, help="actor pool size (default 2)")
    p.add_argument("--min-workers", type=int, default=None,
                   help="smallest actor pool (default: --workers)")
    p.add_argument("--cpus-per-worker", type=float, default=0.5,
                   help="CPUs each actor reserves (default 0.5)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="GPUs each actor reserves (default 0; > 0 only on GPU clusters)")
    add_run_flags(p, verb="render",
                  dry_run_help="print the resolved config and the dataset manifest, then exit")
    p.set_defaults(handler=_render)


def _engine_options(items: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise CliError(f"--engine-option takes KEY=VALUE, got {item!r}")
        try:
            opts[key] = json.loads(raw)
        except json.JSONDecodeError:
            opts[key] = raw
    return opts


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
    options = _engine_options(args.engine_option)
    config = RenderConfig(
        engine=args.engine, out=args.out, count=args.count if args.count is not None else 1,
        seed=args.seed,
        size=args.size if args.size is not None else _default_size(args.engine, options),
        shard_size=args.shard_size, prior=prior, engine_options=options, vectors=args.vectors,
        workers=args.workers, min_workers=args.min_workers,
        cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
        render_batch=args.render_batch, max_shards=args.max_shards, overwrite=args.overwrite,
        progress=not args.no_progress)
    return check_config(config, _FLAG_OF)


def _render(args: argparse.Namespace) -> int:
    from actors.render_stage import RenderStageError, plan_render, run_render_stage

    config = build_config(args)
    if args.dry_run:
        plan = plan_render(config)
        shown = dataclasses.asdict(config)
        shown["count"] = plan.count  # with --vectors: the file's line count
        print(json.dumps({"config": shown, "manifest": plan.manifest,
                          "shards": plan.num_shards}, indent=2, default=str))
        return 0
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address  # read by actors.session.ray_session
    try:
        summary = run_render_stage(config)
    except RenderStageError as e:
        raise CliError(str(e)) from None
    s = summary
    print(f"rendered {s.rendered} of {s.samples} samples ({s.errors} errors) into {s.out}: "
          f"{s.shards_done}/{s.shards_total} shards done, {s.shards_written} written by this run, "
          f"{s.wall_s:.1f} s")
    if not s.complete:
        print(f"{s.shards_total - s.shards_done} shards left: re-run the same command to "
              f"continue", file=sys.stderr)
    elif s.rendered == 0:
        print("no sample rendered: see the errors table in "
              f"{s.out}/errors/", file=sys.stderr)
        return 1
    return 0
