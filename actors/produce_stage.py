"""Paired-data production on Ray Data (paper section 3.2): sample avatar vectors, render them,
invert the renders into G_avatar's W+ space, make realistic faces with G_real (Eq. 6) and
semantic augmentations (Eq. 7), and write a sharded Parquet dataset of pairs.

Pipeline: shard descriptors -> `PairRenderer` actors (the rendering stage's code:
EngineRenderer.render_tables; one shard's rendered rows per output row) -> `ShardInverter`
actors (actors.inversion_worker; G_avatar, G_real, LPIPS loaded once per actor) which write
the shard. Layout of DIR:
    produce_config.json        the dataset-defining config and engine schema (written first)
    pairs/part-00000.parquet   kept pair rows of samples [k*shard_size, (k+1)*shard_size),
                               1 + A rows per sample (aug_index 0 = the inverted pair)
    dropped/part-00000.parquet rows the quality gate dropped (same columns, kept = False)
    errors/part-00000.parquet  vectors the engine could not render (rendering-stage layout)
    dataset_card.json          config, schema, generators, counts, LPIPS backbone, w_init
    figure5.png                render | reconstruction | realistic | 3 augmentations
Exactly once: a shard's files are written atomically by the actor that finishes it, pairs/
last; a run only schedules shards without a pairs file, and an actor re-checks before working.
Ray Data restarts an actor that dies and retries its task (max_restarts / max_task_retries
default to -1 for actor pools), so a lost actor or node loses no row and duplicates none; a
re-run of a killed driver finishes only the missing shards.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from actors.render_stage import (ConfigMismatchError, _check_resources, _differences,
                                 _root_cause)
from actors.renderer import EngineRenderer
from swiftavatar import __version__, shards
from swiftavatar.augment import AugmentConfig, _paper_lambdas
from swiftavatar.engines.registry import EngineSpec
from swiftavatar.engines.schema import EngineSchema, Prior
from swiftavatar.inversion import InversionConfig
from swiftavatar.pairs import (DROPPED_DIR, FIGURE_FILE, PAIR_DIR, pairs_correspondence,
                              read_pairs, shard_rows,
                              write_figure5)

CONFIG_FILE = "produce_config.json"
CARD_FILE = "dataset_card.json"
# Eq. 5's segmentation weight for engines that render masks: with it the inverted layout (a
# hat, glasses, long hair) is the engine's, so a frozen-shape G_avatar hands it to G_real.
# Measured on 48 toon renders (50 steps, G_avatar finetuned with the shape path frozen):
# hat carried into the realistic face 0.00 -> 0.83, mask IoU 0.28 -> 0.65 (README table).
LAMBDA_S_MASKS = 0.1
CARD_MAX_IDS = 10_000  # dropped sample ids listed in the card (all are in dropped/)


class ProduceStageError(RuntimeError):
    """The stage stopped; finished shards are kept and a re-run continues."""


@dataclass(frozen=True)
class ProduceConfig:
    """Paired-data production. Defaults are section 4's: 200 inversion steps, lambdas
    (LPIPS 1, MSE 0.1, latent 1), 10 augmentations with lambda_aug background 1.0, hair 0.3,
    eyeglasses 0.06. Fields marked (dataset) define the rows: a re-run into the same `out`
    must repeat them; the rest only say how to run."""

    engine: str  # (dataset) registered name, 'module:attr', or grpc://HOST:PORT
    out: str  # output directory (local path or pyarrow.fs URI)
    g_avatar: str  # (dataset) avatar-domain generator checkpoint (file, dir or run dir)
    g_real: str  # (dataset) realistic-domain generator checkpoint
    count: int = 10_000  # (dataset) samples; paper: 50000 TikTok, 10000 Alter
    seed: int = 0  # (dataset) vector sampling and augmentation noise
    size: int | None = None  # (dataset) render size; None: G_avatar's output size
    shard_size: int = 64  # (dataset) samples per shard file
    prior: dict[str, Any] | str | None = None  # (dataset) Prior.to_dict(), 'suggested', None
    engine_options: dict[str, Any] = field(default_factory=dict)  # (dataset)
    steps: int = 200  # (dataset) inversion Adam steps
    lr: float = 0.1  # (dataset)
    lambda_p: float = 1.0  # (dataset) LPIPS weight (Eq. 5)
    lambda_i: float = 0.1  # (dataset) MSE weight
    lambda_l: float = 1.0  # (dataset) latent weight
    lambda_s: float | None = None  # (dataset) segmentation term against the engine's masks
    # (swiftavatar.inversion.InversionConfig.lambda_s); None: LAMBDA_S_MASKS for an engine
    # that renders masks, 0 for one that does not
    lambda_c: float = 1.0  # (dataset) cross-domain colour term (InversionConfig.lambda_c):
    # G_real(w)'s region colours against the render's; 0 turns it off (the paper's Eq. 5)
    init: str = "w_tilde"  # (dataset) start code: 'w_tilde' (modified mean) or 'w_mean'
    n_mean: int = 10_000  # (dataset) samples for w~_mean
    augmentations: int = 10  # (dataset) A per sample (Eq. 7)
    lambda_aug: dict[str, float] = field(default_factory=_paper_lambdas)  # (dataset)
    max_loss: float | None = None  # (dataset) quality gate on loss_total; None keeps all
    lpips_net: str = "vgg"  # (dataset)
    lpips_backbone: str | None = None  # (dataset) None: search (see swiftavatar.metrics)
    lpips_allow_random: bool = False  # (dataset) tests only: a random trunk if none found
    workers: int = 2  # inversion actors (most at once)
    min_workers: int | None = None  # smallest inversion pool; None: same as workers
    cpus_per_worker: float = 0.5  # fractional: a pool asking for every CPU hangs Ray Data
    gpus_per_worker: float = 0.0  # > 0 only where the cluster has GPUs (fractions allowed)
    batch_size: int = 8  # images inverted together per actor
    render_workers: int = 1  # rendering actors
    render_cpus: float = 0.25
    render_batch: int = 32  # vectors per engine.render call
    max_shards: int | None = None  # produce at most this many missing shards, then stop
    overwrite: bool = False  # delete a dataset already in `out` and start again
    progress: bool = True
    fail_once_marker: str | None = None  # test only: the first inversion call that finds no
    # file at this path creates it and kills its own process (exercises actor restarts)

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable."""
        out: list[tuple[str, str]] = []

        def need(ok: bool, name: str, msg: str) -> None:
            if not ok:
                out.append((name, f"{msg}, got {getattr(self, name)!r}"))

        need(bool(self.engine), "engine", "must name an engine")
        need(bool(self.out), "out", "must name an output directory")
        need(bool(self.g_avatar), "g_avatar", "must name a checkpoint")
        need(bool(self.g_real), "g_real", "must name a checkpoint")
        need(self.count >= 1, "count", "must be >= 1")
        need(0 <= self.seed < 2 ** 32, "seed", "must be in 0..2**32-1")
        need(self.size is None or 16 <= self.size <= 2048, "size", "must be in 16..2048")
        need(self.shard_size >= 1, "shard_size", "must be >= 1")
        need(self.steps >= 1, "steps", "must be >= 1")
        need(self.lr > 0, "lr", "must be > 0")
        for name in ("lambda_p", "lambda_i", "lambda_l", "lambda_c"):
            need(getattr(self, name) >= 0, name, "must be >= 0")
        need(self.lambda_s is None or self.lambda_s >= 0, "lambda_s", "must be >= 0")
        need(self.init in ("w_tilde", "w_mean"), "init", "must be 'w_tilde' or 'w_mean'")
        need(self.n_mean >= 1, "n_mean", "must be >= 1")
        need(self.augmentations >= 1, "augmentations", "must be >= 1")
        try:
            AugmentConfig(max(1, self.augmentations), dict(self.lambda_aug))
        except ValueError as e:
            out.append(("lambda_aug", str(e)))
        need(self.max_loss is None or self.max_loss > 0, "max_loss", "must be > 0")
        need(self.workers >= 1, "workers", "must be >= 1")
        need(self.min_workers is None or 1 <= self.min_workers <= self.workers, "min_workers",
             f"must be in 1..workers ({self.workers})")
        need(self.cpus_per_worker > 0, "cpus_per_worker", "must be > 0")
        need(self.gpus_per_worker >= 0, "gpus_per_worker", "must be >= 0")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.render_workers >= 1, "render_workers", "must be >= 1")
        need(self.render_cpus > 0, "render_cpus", "must be > 0")
        need(self.render_batch >= 1, "render_batch", "must be >= 1")
        need(self.max_shards is None or self.max_shards >= 1, "max_shards", "must be >= 1")
        return out

    def validate(self) -> None:
        bad = self.problems()
        if bad:
            raise ValueError("; ".join(f"{name} {msg}" for name, msg in bad))

    def inversion_config(self, engine_masks: bool) -> InversionConfig:
        """Eq. 5's settings; the segmentation weight resolved for an engine that does
        (`engine_masks`) or does not render masks."""
        lambda_s = self.lambda_s
        if lambda_s is None:
            lambda_s = LAMBDA_S_MASKS if engine_masks else 0.0
        return InversionConfig(steps=self.steps, lr=self.lr, lambda_p=self.lambda_p,
                               lambda_i=self.lambda_i, lambda_l=self.lambda_l,
                               lambda_s=lambda_s, lambda_c=self.lambda_c, n_mean=self.n_mean)

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(self.augmentations, dict(self.lambda_aug))


@dataclass
class ProducePlan:
    config: ProduceConfig
    spec: EngineSpec
    schema: EngineSchema
    size: int
    manifest: dict[str, Any]
    job: Any  # actors.inversion_worker.InversionJob
    render_job: Any  # actors.renderer.RenderJob
    lpips_info: dict[str, Any]
    w_init: dict[str, Any]

    @property
    def num_shards(self) -> int:
        return -(-self.config.count // self.config.shard_size)

    def shard_range(self, k: int) -> tuple[int, int]:
        s = self.config.shard_size
        return k * s, min(self.config.count, (k + 1) * s)


# ---- planning ----------------------------------------------------------------------------
def plan_produce(config: ProduceConfig) -> ProducePlan:
    """Validate, read the engine schema and both generators, build the LPIPS metric (to fail
    early and name its backbone) and compute the start code. No Ray."""
    import torch

    from actors.inversion_worker import InversionJob, check_compatible
    from actors.renderer import RenderJob
    from swiftavatar.inversion import modified_mean_latent
    from swiftavatar.metrics import build_lpips
    from swiftavatar.training.checkpoint import checkpoint_spec, load_generator

    config.validate()
    spec = EngineSpec.parse(config.engine, config.engine_options)
    with spec.build() as engine:
        schema = engine.schema
        identity_options = {k: v for k, v in spec.options.items() if k not in engine.run_options}
        if config.prior == "suggested":
            prior = engine.suggested_prior() or Prior()
        else:
            prior = Prior.from_dict(config.prior) if config.prior is not None else Prior()
    prior.check(schema)
    if config.lambda_s and not schema.supports_masks:
        raise ValueError(f"lambda_s {config.lambda_s} needs an engine that renders masks; "
                         f"{spec.name!r} does not: set lambda_s to 0")
    inversion = config.inversion_config(schema.supports_masks)
    g_a, meta_a = load_generator(config.g_avatar)
    g_r, meta_r = load_generator(config.g_real)
    check_compatible(g_a, g_r, config.g_avatar, config.g_real)
    size = config.size or g_a.config.size
    lpips = build_lpips(config.lpips_net, config.lpips_backbone,
                        allow_random=config.lpips_allow_random)
    w_mean = meta_a.get("w_mean")
    if w_mean is None:  # official files carry none: estimate it as the paper does
        w_mean = g_a.mean_latent(config.n_mean, generator=torch.Generator().manual_seed(
            config.seed))
    w_mean = w_mean.detach().float().reshape(1, -1)                         # (1, D)
    mod = modified_mean_latent(g_a, n=config.n_mean, seed=config.seed)
    w_tilde = mod.w if config.init == "w_tilde" else w_mean                 # (1, D)
    w_init = {"kind": config.init, "n_mean": config.n_mean,
              "rule": mod.rule if config.init == "w_tilde" else "checkpoint w_mean",
              "threshold": mod.threshold if config.init == "w_tilde" else None,
              "kept": int(mod.kept.sum()) if config.init == "w_tilde" else None,
              "distance_to_w_mean": float((w_tilde - w_mean).norm()),
              "sha256": hashlib.sha256(w_tilde.numpy().tobytes()).hexdigest()[:16]}
    out = config.out if "://" in config.out else os.path.abspath(config.out)
    generators = {"avatar": _gen_info(meta_a), "real": _gen_info(meta_r)}
    dataset = {
        "engine": spec.name, "engine_options": identity_options, "count": config.count,
        "seed": config.seed, "prior": prior.to_dict(), "size": size,
        "shard_size": config.shard_size, "schema_fingerprint": schema.fingerprint,
        "generators": {k: {"path": v["path"], "step": v["step"]} for k, v in generators.items()},
        "inversion": dataclasses.asdict(inversion), "init": config.init,
        "augment": {"num_augmentations": config.augmentations,
                    "lambdas": dict(sorted(config.lambda_aug.items()))},
        "max_loss": config.max_loss,
        "lpips": {"net": lpips.info["net"], "backbone": lpips.info["backbone"]},
    }
    blob = json.dumps(dataset, sort_keys=True, default=str).encode()
    manifest = {"dataset": dataset, "config_fingerprint": hashlib.sha256(blob).hexdigest()[:16],
                "engine_schema": schema.to_dict(), "created_by": f"swiftavatar {__version__}"}
    job = InversionJob(
        g_avatar=checkpoint_spec(config.g_avatar), g_real=checkpoint_spec(config.g_real),
        out=out, schema=schema.to_dict(), w_mean=w_mean.tolist(), w_tilde=w_tilde.tolist(),
        inversion=inversion, augment=config.augment_config(),
        batch_size=config.batch_size, max_loss=config.max_loss, seed=config.seed,
        gpus=config.gpus_per_worker, lpips_net=config.lpips_net,
        lpips_backbone=config.lpips_backbone, lpips_allow_random=config.lpips_allow_random,
        fail_once_marker=config.fail_once_marker)
    render_job = RenderJob(engine=spec, out=out, seed=config.seed, size=size,
                           render_batch=config.render_batch,
                           schema_fingerprint=schema.fingerprint, prior=prior.to_dict())
    return ProducePlan(config, spec, schema, size, manifest, job, render_job,
                       dict(lpips.info), w_init)


def _gen_info(meta: dict[str, Any]) -> dict[str, Any]:
    return {"path": meta.get("path"), "step": meta.get("step"), "domain": meta.get("domain"),
            "generator_config": meta.get("generator_config")}


def prepare_output(plan: ProducePlan) -> None:
    """Write produce_config.json, or check the one there (resume); `overwrite` starts anew."""
    cfg = plan.config
    fs, base = shards.resolve(cfg.out)
    cfg_path = shards.join(base, CONFIG_FILE)
    subs = (PAIR_DIR, DROPPED_DIR, shards.ERROR_DIR)
    old = shards.read_json(fs, cfg_path)
    if cfg.overwrite:
        for sub in subs:
            if fs.get_file_info(shards.join(base, sub)).type == pafs.FileType.Directory:
                fs.delete_dir(shards.join(base, sub))
        for name in (CARD_FILE, FIGURE_FILE, CONFIG_FILE):
            if shards.is_file(fs, shards.join(base, name)):
                fs.delete_file(shards.join(base, name))
        old = None
    if old is None:
        if shards.list_shards(fs, shards.join(base, PAIR_DIR)):
            raise ConfigMismatchError(f"{cfg.out} holds pair shards but no {CONFIG_FILE}; use "
                                      f"--overwrite to replace them, or a new --out")
        shards.write_json_atomic(fs, cfg_path, plan.manifest)
        return
    diffs = _differences(old.get("dataset", {}), plan.manifest["dataset"])
    if diffs:
        raise ConfigMismatchError(f"{cfg.out} already holds pairs produced with a different "
                                  f"config (" + "; ".join(diffs) + "); use --overwrite to "
                                  "replace it, or a new --out")
    for sub in subs:
        shards.remove_temporaries(fs, shards.join(base, sub))


# ---- the rendering actor -------------------------------------------------------------------
RENDERED_SCHEMA = pa.schema([
    pa.field("shard", pa.int64()), pa.field("status", pa.string()),
    pa.field("error", pa.string()), pa.field("rendered", pa.binary()),
    pa.field("errors", pa.binary()),
])


class PairRenderer(EngineRenderer):
    """EngineRenderer whose output travels on instead of being written: descriptor rows ->
    one row per shard with its rendered rows and error rows as Arrow IPC bytes."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        from actors.inversion_worker import table_to_bytes
        from actors.renderer import _describe

        out = []
        for r in batch.to_pylist():
            k = int(r["shard"])
            try:
                table, errors = self.render_tables(k, int(r["start"]), int(r["stop"]))
                out.append({"shard": k, "status": "rendered", "error": None,
                            "rendered": table_to_bytes(table),
                            "errors": None if errors is None else table_to_bytes(errors)})
            except Exception as e:  # noqa: BLE001 - e.g. an engine outage: the shard fails
                out.append({"shard": k, "status": "failed", "error": _describe(e),
                            "rendered": None, "errors": None})
        return pa.Table.from_pylist(out, schema=RENDERED_SCHEMA)


# ---- running -----------------------------------------------------------------------------
def run_produce_stage(config: ProduceConfig) -> dict[str, Any]:
    """Produce the dataset `config` describes into `config.out`, resuming what is there.
    Returns the dataset card (also written to DIR/dataset_card.json)."""
    from actors.session import ray_session

    t0 = time.perf_counter()
    plan = plan_produce(config)
    prepare_output(plan)
    fs, base = shards.resolve(config.out)
    finished = shards.list_shards(fs, shards.join(base, PAIR_DIR))
    todo = [k for k in range(plan.num_shards) if k not in finished]
    if config.max_shards is not None:
        todo = todo[:config.max_shards]
    results: list[dict[str, Any]] = []
    crash = None
    if todo:
        with ray_session():
            results, crash = _run_pool(plan, todo)
        # a writer whose node died mid-shard leaves its temporary file; the shard was redone
        # by another actor, and no writer of this run is left
        for sub in (PAIR_DIR, DROPPED_DIR, shards.ERROR_DIR):
            shards.remove_temporaries(fs, shards.join(base, sub))
    card = build_card(plan, results, len(finished), time.perf_counter() - t0)
    write_figure5(config.out)
    report = pairs_correspondence(config.out)
    card["correspondence"] = None if report is None else {
        "pairs": report.n, "avatar_masks": "engine" if plan.schema.supports_masks
        else "G_avatar segmentation", "report": report.to_dict()}
    if report is not None and config.progress:
        print(report.table(), file=sys.stderr)
    shards.write_json_atomic(fs, shards.join(base, CARD_FILE), card)
    failed = [r for r in results if r["status"] == "failed"]
    if crash or failed:
        why = crash or f"shard {failed[0]['shard']}: {failed[0]['error']}"
        raise ProduceStageError(f"{len(todo) - card['this_run']['shards_written']} of "
                                f"{len(todo)} shards did not finish ({why}); finished shards "
                                f"are kept, re-run the same command to continue")
    return card


def _run_pool(plan: ProducePlan, todo: list[int]) -> tuple[list[dict[str, Any]], str | None]:
    import gc

    import ray
    from tqdm.auto import tqdm

    from actors.inversion_worker import ShardInverter

    cfg = plan.config
    _check_resources(cfg)
    items = []
    for k in todo:
        start, stop = plan.shard_range(k)
        items.append({"shard": k, "start": start, "stop": stop})
    size = min(cfg.workers, len(todo))
    min_size = min(cfg.min_workers or cfg.workers, size)
    r_size = min(cfg.render_workers, len(todo))
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats)
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    results: list[dict[str, Any]] = []
    crash = None
    try:
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            PairRenderer, fn_constructor_kwargs={"job": plan.render_job}, batch_size=1,
            batch_format="pyarrow", num_cpus=cfg.render_cpus,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=r_size),
        ).map_batches(
            ShardInverter, fn_constructor_kwargs={"job": plan.job}, batch_size=1,
            batch_format="pyarrow", num_cpus=cfg.cpus_per_worker,
            num_gpus=cfg.gpus_per_worker or None,
            compute=ray.data.ActorPoolStrategy(min_size=min_size, max_size=size),
        )
        counts = {"rows": 0, "dropped": 0, "errors": 0, "failed": 0}
        it = iter(ds.iter_rows())
        try:
            with tqdm(total=len(todo), unit="shard", desc=f"produce {plan.spec.name}",
                      disable=not cfg.progress) as bar:
                for r in it:
                    results.append(dict(r))
                    for key in ("rows", "dropped", "errors"):
                        counts[key] += int(r[key])
                    counts["failed"] += r["status"] == "failed"
                    bar.update(1)
                    bar.set_postfix(counts, refresh=False)
        except Exception as e:  # noqa: BLE001 - e.g. a generator that cannot load on a worker
            crash = _root_cause(e)
        finally:
            it.close()
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats = saved
        gc.collect()  # an execution that stopped early frees its actor pools when collected
    return results, crash


# ---- the card ------------------------------------------------------------------------------
def build_card(plan: ProducePlan, results: list[dict[str, Any]], skipped: int,
               wall_s: float) -> dict[str, Any]:
    """The dataset card: counts over the files on disk, plus what this run did."""
    cfg = plan.config
    fs, base = shards.resolve(cfg.out)
    done = shards.list_shards(fs, shards.join(base, PAIR_DIR))
    A = cfg.augmentations
    pairs = shard_rows(fs, done, done, ["sample_id", "aug_index"])
    dropped = shard_rows(fs, shards.list_shards(fs, shards.join(base, DROPPED_DIR)), done,
                    ["sample_id", "aug_index"])
    errors = shard_rows(fs, shards.list_shards(fs, shards.join(base, shards.ERROR_DIR)), done,
                   ["sample_id"])
    dropped_ids = sorted(set(dropped.column("sample_id").to_pylist())) if dropped else []
    rows = 0 if pairs is None else pairs.num_rows
    counts = {
        "samples": cfg.count,
        "samples_done": sum(plan.shard_range(k)[1] - plan.shard_range(k)[0] for k in done),
        "pairs_written": rows,  # rows in pairs/, (1 + A) per kept sample
        "samples_kept": rows // (1 + A),
        "dropped_by_gate": len(dropped_ids),
        "dropped_rows": 0 if dropped is None else dropped.num_rows,
        "engine_errors": 0 if errors is None else errors.num_rows,
        "shards_total": plan.num_shards, "shards_done": len(done),
    }
    return {
        "format": "swiftavatar.pairs.v1",
        "config": dataclasses.asdict(cfg),
        "dataset": plan.manifest["dataset"],
        "config_fingerprint": plan.manifest["config_fingerprint"],
        "engine_schema": plan.manifest["engine_schema"],
        "generators": {"avatar": _gen_info_from(plan, "avatar"),
                       "real": _gen_info_from(plan, "real")},
        "counts": counts,
        "complete": len(done) == plan.num_shards,
        "dropped_sample_ids": dropped_ids[:CARD_MAX_IDS],
        "quality_gate": {"max_loss": cfg.max_loss, "on": "loss_total of the inversion",
                         "dropped_rows_in": f"{DROPPED_DIR}/"},
        "lpips": plan.lpips_info,
        "w_init": plan.w_init,
        "this_run": {"shards_written": sum(r["status"] == "written" for r in results),
                     "shards_skipped": skipped + sum(r["status"] == "skipped" for r in results),
                     "shards_failed": sum(r["status"] == "failed" for r in results),
                     "wall_s": round(wall_s, 3)},
        "created_by": f"swiftavatar {__version__}",
    }


def _gen_info_from(plan: ProducePlan, which: str) -> dict[str, Any]:
    return dict(plan.manifest["dataset"]["generators"][which])


__all__ = ["CARD_FILE", "CONFIG_FILE", "FIGURE_FILE", "PairRenderer", "ProduceConfig",
           "ProducePlan", "ProduceStageError", "build_card", "plan_produce", "prepare_output",
           "read_pairs", "run_produce_stage", "write_figure5"]
