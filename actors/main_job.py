"""The main job (`swiftavatar demo`): the whole method on the embedded default, one stage after
another into one run directory, each stage resuming what an earlier run finished.

1. render: an avatar dataset per engine (contact sheets; the Baseline's training data).
2. produce: paired data per engine from the shipped generators (inversion, G_real, semantic
   augmentation, Figure 5).
3. estimators: Baseline, + domain adaptation, + semantic augmentation per engine (Ray Train).
4. evaluation: held-out faces against the designer (and the Baseline on engine renders);
   OUT/report/report.html with the ablation table and Figure 6, OUT/report.json.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from swiftavatar import __version__
from swiftavatar.estimator.config import EstimatorTrainConfig


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
    g_avatar: str | None = None      # None: the engine's shipped G_avatar
    g_real: str = "pretrained:g_real_64"
    n_mean: int = 2_000              # samples for w~_mean (paper 10^4; 2k is a minute less on
                                     # 2 cores and the mean of a 256-d code moves little)
    prior: str | None = "suggested"

    def g_avatar_spec(self) -> str:
        from swiftavatar.pretrained import ENGINE_G_AVATAR

        if self.g_avatar:
            return self.g_avatar
        if self.engine not in ENGINE_G_AVATAR:
            raise ValueError(f"no shipped G_avatar for engine {self.engine!r}; finetune one "
                             f"with `swiftavatar train-generator --domain avatar` and pass it")
        return f"pretrained:{ENGINE_G_AVATAR[self.engine]}"


@dataclass(frozen=True)
class EstimateConfig:
    """Stages 3-4: estimator training per method and the evaluation."""

    images_seen: int = 15_000        # training images per method
    # 2 DDP workers x 0.5 CPU: leaves a CPU of a 2-core machine for Ray Data's read tasks
    estimator: EstimatorTrainConfig = field(
        default_factory=lambda: EstimatorTrainConfig.embedded(cpus_per_worker=0.5))
    eval_count: int = 116            # held-out faces (the paper's 116)
    eval_size: int = 128             # render side for LPIPS


@dataclass(frozen=True)
class DemoConfig:
    """The embedded default. `quick()` is the small preset (its numbers are labelled quick)."""

    out: str = "runs/demo"
    seed: int = 0
    engines: tuple[EngineRun, ...] = (EngineRun("toon", 2048, 256),
                                      EngineRun("avataaars", 1536, 256))
    produce: tuple[ProduceRun, ...] = (ProduceRun("toon", 128), ProduceRun("avataaars", 128))
    produce_shard_size: int = 16
    estimate: EstimateConfig | None = field(default_factory=EstimateConfig)
    workers: int = 2
    cpus_per_worker: float = 0.5
    shard_size: int = 256
    preset: str = "full"

    @classmethod
    def quick(cls, **kw) -> "DemoConfig":
        kw.setdefault("engines", (EngineRun("toon", 256, 128), EngineRun("avataaars", 128, 128)))
        kw.setdefault("shard_size", 64)
        kw.setdefault("produce", (
            ProduceRun("toon", 16, steps=25, augmentations=4, n_mean=500),))
        kw.setdefault("produce_shard_size", 8)
        kw.setdefault("estimate", EstimateConfig(
            images_seen=1_000, eval_count=16, eval_size=64,
            estimator=EstimatorTrainConfig.embedded(val_fraction=0.0, cpus_per_worker=0.5,
                                                    epochs=8, lr_step_epochs=3)))
        return cls(preset="quick", **kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_demo(cfg: DemoConfig) -> dict:
    """Run every stage into `cfg.out` (Ray must be up); returns the report also written to
    OUT/report.json."""
    from actors.render_stage import RenderConfig, run_render_stage
    from swiftavatar import shards

    out = Path(cfg.out)
    fs, base = shards.resolve(cfg.out)
    shards.write_json_atomic(fs, shards.join(base, "demo_config.json"),
                             {"swiftavatar": __version__, **cfg.to_dict()})
    rows = []
    t0 = time.time()
    for i, run in enumerate(cfg.engines, 1):
        _say(f"[render {i}/{len(cfg.engines)}] {run.count} x {run.engine} at {run.size}px -> "
             f"{out / 'render' / run.engine}")
        summary = run_render_stage(RenderConfig(
            engine=run.engine, out=str(out / "render" / run.engine), count=run.count,
            seed=cfg.seed, size=run.size, shard_size=cfg.shard_size, prior=run.prior,
            workers=cfg.workers, cpus_per_worker=cfg.cpus_per_worker))
        rows.append(summary.to_dict())
    produced = [_produce(cfg, run, out, i, len(cfg.produce))
                for i, run in enumerate(cfg.produce, 1)]
    report = {"preset": cfg.preset, "render": rows, "produce": produced}
    if cfg.estimate is not None:
        report.update(_estimate_and_evaluate(cfg, out))
    report["wall_s"] = round(time.time() - t0, 1)
    shards.write_json_atomic(fs, shards.join(base, "report.json"), report)
    return report


def _produce(cfg: DemoConfig, run: ProduceRun, out: Path, i: int, n: int) -> dict:
    """Stage 2 for one engine; returns its report row."""
    from actors.produce_stage import ProduceConfig, run_produce_stage

    dest = out / "pairs" / run.engine
    _say(f"[produce {i}/{n}] {run.count} x {run.engine}, {run.steps} inversion steps, "
         f"{run.augmentations} augmentations -> {dest}")
    t0 = time.time()
    card = run_produce_stage(ProduceConfig(
        engine=run.engine, out=str(dest), g_avatar=run.g_avatar_spec(), g_real=run.g_real,
        count=run.count, seed=cfg.seed, shard_size=cfg.produce_shard_size, prior=run.prior,
        steps=run.steps, augmentations=run.augmentations, n_mean=run.n_mean,
        workers=cfg.workers, cpus_per_worker=cfg.cpus_per_worker))
    counts = card["counts"]
    return {"engine": run.engine, "out": str(dest), "samples": counts["samples_done"],
            "pairs": counts["pairs_written"], "dropped": counts["dropped_rows"],
            "lpips_backbone": card["lpips"]["backbone"], "wall_s": round(time.time() - t0, 1),
            "figure5": str(dest / "figure5.png")}


def _estimate_and_evaluate(cfg: DemoConfig, out: Path) -> dict:
    """Stages 3-4 for each engine that was both rendered and produced."""
    from actors.ablation import AblationConfig, evaluate_methods, train_methods
    from swiftavatar.evaluation import EvalSet, write_report
    from swiftavatar.metrics import build_lpips

    est = cfg.estimate
    assert est is not None
    rendered = {r.engine for r in cfg.engines}
    engines = [p.engine for p in cfg.produce if p.engine in rendered]
    if not engines:                      # e.g. --engines avataaars with the toon-only quick
        _say("[estimators] skipped: no engine was both rendered and produced")
        return {}
    training, results, figures = {}, [], {}
    eval_set = EvalSet(count=est.eval_count, size=est.eval_size)
    eval_set.check_disjoint([cfg.seed])
    faces = None
    lpips = None
    for engine in engines:
        ab = AblationConfig(engine=engine, pairs=str(out / "pairs" / engine),
                            renders=str(out / "render" / engine),
                            out=str(out / "estimators" / engine),
                            images_seen=est.images_seen,
                            estimator=dataclasses.replace(est.estimator, seed=cfg.seed))
        training[engine] = train_methods(ab)
        if faces is None:
            _say(f"[evaluate] {est.eval_count} held-out faces at {est.eval_size}px")
            faces = eval_set.faces()
            lpips = build_lpips()
        _say(f"[evaluate] {engine}: renders, LPIPS against the designer")
        res, sheet = evaluate_methods(ab, faces, eval_size=est.eval_size, lpips=lpips)
        results += res
        figures[f"Figure 6, {engine}: input | Baseline | + domain adaptation | "
                f"+ semantic augmentation | designer"] = sheet
    paths = write_report(out / "report", results, eval_set=eval_set.to_dict(), figures=figures,
                         notes=[f"preset {cfg.preset}; LPIPS backbone "
                                f"{results[0].lpips_backbone}"])
    return {"estimators": training,
            "evaluation": [r.to_dict() for r in results],
            "report_html": str(paths.html)}


__all__ = ["DemoConfig", "EngineRun", "EstimateConfig", "ProduceRun", "run_demo"]
