"""`swiftavatar demo`: the main job on the embedded default.

Stage 1: sample and render an avatar dataset per engine on Ray and write contact sheets.
Stage 2: paired-data production (render -> inversion into G_avatar -> G_real -> semantic
augmentation -> Parquet pairs + Figure 5) for each engine with a shipped G_avatar (`toon`).
Later stages (G_avatar finetuning for other engines, estimator, evaluation) append to the same
run directory as they are built. Re-running the same command into the same `--out` resumes:
finished shards are kept.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from swiftavatar import __version__
from swiftavatar.cli import CliError


@dataclass(frozen=True)
class EngineRun:
    engine: str
    count: int
    size: int
    prior: str | None = "suggested"  # the engine's recommended prior (fewer hats, eyepatches)


@dataclass(frozen=True)
class ProduceRun:
    """Paired data for one engine from the shipped generators. `steps` is below the paper's
    200: on 2 CPU cores an inversion step costs about 0.1 s per image, and 50 steps reach most
    of 200's LPIPS (README, paired data production)."""

    engine: str
    count: int
    steps: int = 50
    augmentations: int = 10
    g_avatar: str = "pretrained:g_avatar_toon_64"
    g_real: str = "pretrained:g_real_64"
    n_mean: int = 10_000
    prior: str | None = "suggested"


@dataclass(frozen=True)
class DemoConfig:
    """The embedded default. `quick()` is the small preset (its numbers are labelled quick)."""

    out: str = "runs/demo"
    seed: int = 0
    engines: tuple[EngineRun, ...] = (
        EngineRun("toon", 2048, 256),
        EngineRun("avataaars", 256, 256),
    )
    produce: tuple[ProduceRun, ...] = (ProduceRun("toon", 128),)
    produce_shard_size: int = 16
    workers: int = 2
    cpus_per_worker: float = 0.5
    shard_size: int = 256
    preset: str = "full"

    @classmethod
    def quick(cls, **kw) -> "DemoConfig":
        kw.setdefault("engines", (EngineRun("toon", 256, 128), EngineRun("avataaars", 64, 128)))
        kw.setdefault("shard_size", 64)
        kw.setdefault("produce", (ProduceRun("toon", 16, steps=25, augmentations=4),))
        kw.setdefault("produce_shard_size", 8)
        return cls(preset="quick", **kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the whole pipeline on the embedded default (the README's main job)",
        description="Run the pipeline on the embedded default, on a local Ray instance (or the "
                    "cluster at $RAY_ADDRESS). Built so far: render a dataset per engine "
                    "(toon, avataaars) with contact sheets, then paired data (inversion, "
                    "realistic faces, augmentation, Figure 5) for toon from the shipped "
                    "generators. Re-running resumes.")
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--quick", action="store_true",
                   help="small preset for a smoke run (minutes); its numbers are labelled quick")
    p.add_argument("--seed", type=int, default=0, help="seed for every stage (default 0)")
    p.add_argument("--workers", type=int, default=2, help="actors per stage (default 2)")
    p.add_argument("--engines", default=None, metavar="NAME[,NAME]",
                   help="only these engines (default: toon,avataaars)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(handler=_demo)


def resolve(args: argparse.Namespace) -> DemoConfig:
    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    kw = dict(out=args.out, seed=args.seed, workers=args.workers)
    cfg = DemoConfig.quick(**kw) if args.quick else DemoConfig(**kw)
    if args.engines:
        wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
        known = {r.engine: r for r in cfg.engines}
        bad = [e for e in wanted if e not in known]
        if bad:
            raise CliError(f"--engines: {bad[0]!r} is not part of the demo; choose from "
                           f"{', '.join(known)}")
        cfg = dataclasses.replace(cfg, engines=tuple(known[e] for e in wanted),
                                  produce=tuple(p for p in cfg.produce if p.engine in wanted))
    return cfg


def _demo(args: argparse.Namespace) -> int:
    cfg = resolve(args)
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    from actors.produce_stage import ProduceStageError
    from actors.render_stage import RenderStageError
    from actors.session import ray_session

    try:
        with ray_session():
            report = run_demo(cfg)
    except (RenderStageError, ProduceStageError) as e:
        raise CliError(f"{e} (the same `demo` command resumes)") from None
    print(f"\n{'engine':<12}{'rendered':>10}{'errors':>8}{'shards':>8}{'wall s':>8}  sheet")
    for r in report["render"]:
        print(f"{r['engine']:<12}{r['rendered']:>10}{r['errors']:>8}{r['shards_total']:>8}"
              f"{r['wall_s']:>8.1f}  {Path(r['out']) / 'contact_sheet.png'}")
    if report["produce"]:
        print(f"\n{'engine':<12}{'samples':>10}{'pairs':>8}{'dropped':>8}{'wall s':>8}  figure 5")
    for r in report["produce"]:
        print(f"{r['engine']:<12}{r['samples']:>10}{r['pairs']:>8}{r['dropped']:>8}"
              f"{r['wall_s']:>8.1f}  {r['figure5']}")
    print(f"\nreport: {Path(cfg.out) / 'report.json'}  ({cfg.preset} preset, "
          f"{report['wall_s']} s)")
    return 0


def run_demo(cfg: DemoConfig) -> dict:
    """Run every built stage of the main job into `cfg.out` (Ray must be up); returns the
    report also written to `out/report.json`."""
    from actors.render_stage import RenderConfig, run_render_stage
    from swiftavatar import shards

    out = Path(cfg.out)
    fs, base = shards.resolve(cfg.out)
    shards.write_json_atomic(fs, shards.join(base, "demo_config.json"),
                             {"swiftavatar": __version__, **cfg.to_dict()})
    rows = []
    t0 = time.time()
    for i, run in enumerate(cfg.engines, 1):
        print(f"[{i}/{len(cfg.engines)}] render {run.count} x {run.engine} at "
              f"{run.size}px -> {out / 'render' / run.engine}", file=sys.stderr)
        summary = run_render_stage(RenderConfig(
            engine=run.engine, out=str(out / "render" / run.engine), count=run.count,
            seed=cfg.seed, size=run.size, shard_size=cfg.shard_size, prior=run.prior,
            workers=cfg.workers, cpus_per_worker=cfg.cpus_per_worker))
        rows.append(summary.to_dict())
    produced = [_produce(cfg, run, out, i, len(cfg.produce))
                for i, run in enumerate(cfg.produce, 1)]
    report = {"preset": cfg.preset, "wall_s": round(time.time() - t0, 1), "render": rows,
              "produce": produced}
    shards.write_json_atomic(fs, shards.join(base, "report.json"), report)
    return report


def _produce(cfg: DemoConfig, run: ProduceRun, out: Path, i: int, n: int) -> dict:
    """Stage 2 for one engine; returns its report row."""
    from actors.produce_stage import ProduceConfig, run_produce_stage

    dest = out / "pairs" / run.engine
    print(f"[produce {i}/{n}] {run.count} x {run.engine}, {run.steps} inversion steps, "
          f"{run.augmentations} augmentations -> {dest}", file=sys.stderr)
    t0 = time.time()
    card = run_produce_stage(ProduceConfig(
        engine=run.engine, out=str(dest), g_avatar=run.g_avatar, g_real=run.g_real,
        count=run.count, seed=cfg.seed, shard_size=cfg.produce_shard_size, prior=run.prior,
        steps=run.steps, augmentations=run.augmentations, n_mean=run.n_mean,
        workers=cfg.workers, cpus_per_worker=cfg.cpus_per_worker))
    counts = card["counts"]
    return {"engine": run.engine, "out": str(dest), "samples": counts["samples_done"],
            "pairs": counts["pairs_written"], "dropped": counts["dropped_rows"],
            "lpips_backbone": card["lpips"]["backbone"], "wall_s": round(time.time() - t0, 1),
            "figure5": str(dest / "figure5.png")}
