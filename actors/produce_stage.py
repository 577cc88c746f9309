"""Paired-data production on Ray Data (paper section 3.2): sample avatar vectors, render them,
invert the renders into G_avatar's W+ space, make realistic faces with G_real (Eq. 6) and
semantic augmentations (Eq. 7), and write a sharded Parquet dataset of pairs.

Pipeline: shard descriptors -> `PairRenderer` actors (the rendering stage's code:
EngineRenderer.render_tables; one shard's rendered rows per output row) -> `ShardInverter`
actors (actors.inversion_worker: swiftavatar.production.rows.PairMaker; G_avatar, G_real,
LPIPS loaded once per actor) which write the shard. The config and plan are Ray-free
(swiftavatar.production.config / .plan). Layout of DIR:
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

import sys
import time
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from actors.render_stage import (ConfigMismatchError, _check_resources, _differences,
                                 _root_cause)
from actors.renderer import EngineRenderer, RenderJob
from swiftavatar import __version__, shards
from swiftavatar.production.config import ProduceConfig
from swiftavatar.production.pairs import (DROPPED_DIR, FIGURE_FILE, PAIR_DIR,
                                          pairs_correspondence, shard_rows, write_figure5)
from swiftavatar.production.plan import ProducePlan, plan_produce

CONFIG_FILE = "produce_config.json"
CARD_FILE = "dataset_card.json"
CARD_MAX_IDS = 10_000  # dropped sample ids listed in the card (all are in dropped/)


class ProduceStageError(RuntimeError):
    """The stage stopped; finished shards are kept and a re-run continues."""


def render_job(plan: ProducePlan) -> RenderJob:
    """The rendering actors' job of a plan (the rendering stage's EngineRenderer)."""
    return RenderJob(engine=plan.spec, out=plan.job.out, seed=plan.config.seed, size=plan.size,
                     render_batch=plan.config.render_batch,
                     schema_fingerprint=plan.schema.fingerprint, prior=plan.prior.to_dict())


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
            PairRenderer, fn_constructor_kwargs={"job": render_job(plan)}, batch_size=1,
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
    A = cfg.augment.num_augmentations
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
        "config": cfg.to_dict(),
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


__all__ = ["CARD_FILE", "CONFIG_FILE", "PairRenderer", "ProduceStageError", "build_card",
           "prepare_output", "render_job", "run_produce_stage"]
