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
    corrupt/pairs/, ...        damaged shards a re-run found and moved aside (then redone)
Exactly once: a shard's files are written atomically by the actor that finishes it, pairs/
last; a run only schedules shards without a pairs file, and an actor re-checks before working.
Ray Data restarts an actor that dies and retries its task (max_restarts / max_task_retries
default to -1 for actor pools), so a lost actor or node loses no row and duplicates none; a
re-run of a killed driver finishes only the missing shards. DIR is a `swiftavatar.rundir.
RunDir`: one driver at a time (the lock), the manifest checked on a re-run, and finished
shards verified (footer, row count) before a resume.
"""
from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from actors.render_stage import ConfigMismatchError
from actors.renderer import EngineRenderer, RenderJob
from swiftavatar import __version__, shards
from swiftavatar.production.config import ProduceConfig
from swiftavatar.production.pairs import (DROPPED_DIR, FIGURE_FILE, PAIR_DIR,
                                          pairs_correspondence, shard_rows, write_figure5)
from swiftavatar.production.plan import ProducePlan, plan_produce
from swiftavatar.rundir import CORRUPT_DIR, RunDir, locked

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


def prepare_output(plan: ProducePlan, rundir: RunDir | None = None) -> list[int]:
    """Write produce_config.json, or check that the one there matches (resume), clear what
    interrupted writers left and verify the finished pair shards (a damaged one is moved to
    corrupt/ with its dropped/ and errors/ files, and made again). With `overwrite`, delete
    the dataset already there first. Returns the shards moved aside. Hold the run's lock
    (run_produce_stage does)."""
    cfg = plan.config
    rd = rundir or RunDir(cfg.out, "produce")
    rd.create()
    subs = (PAIR_DIR, DROPPED_DIR, shards.ERROR_DIR)
    if cfg.overwrite:
        rd.delete(*subs, CORRUPT_DIR, CARD_FILE, FIGURE_FILE, CONFIG_FILE)
    if rd.read_json(CONFIG_FILE) is None and shards.list_shards(rd.fs, rd.path(PAIR_DIR)):
        raise ConfigMismatchError(f"{cfg.out} holds pair shards but no {CONFIG_FILE}; use "
                                  f"--overwrite to replace them, or a new --out")
    old = rd.check_identity(CONFIG_FILE, plan.manifest, section="dataset", write=False,
                            holds="pairs produced with a different config",
                            fix="use --overwrite to replace it, or a new --out",
                            error=ConfigMismatchError)
    if old is None:
        return []
    rd.remove_temporaries(*subs)
    per_sample = 1 + cfg.augment.num_augmentations  # the pair and its augmentations

    def expected_rows(k: int) -> int:  # rows of the shard's samples less errors/ and dropped/
        if k >= plan.num_shards:
            raise ValueError(f"shard {k} is not in the plan ({plan.num_shards} shards)")
        start, stop = plan.shard_range(k)
        rendered = stop - start - rd.shard_rows(shards.ERROR_DIR, k)
        return rendered * per_sample - rd.shard_rows(DROPPED_DIR, k)

    return rd.verify_shards(PAIR_DIR, expected_rows, companions=(DROPPED_DIR, shards.ERROR_DIR))


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
def run_produce_stage(config: ProduceConfig, ray_address: str | None = None) -> dict[str, Any]:
    """Produce the dataset `config` describes into `config.out`, resuming what is there.
    Returns the dataset card (also written to DIR/dataset_card.json). Uses the running Ray
    instance, else the cluster at `ray_address`, else starts one (actors.session.ray_session).
    A second run into the same local `out` while this one holds it raises RunLockedError."""
    t0 = time.perf_counter()
    plan = plan_produce(config)   # one driver per dataset: a second is refused with the first's pid
    return locked(config.out, "produce", lambda rd: _run_locked(plan, rd, t0, ray_address))


def _run_locked(plan: ProducePlan, rd: RunDir, t0: float,
                ray_address: str | None) -> dict[str, Any]:
    from actors.inversion_worker import ShardInverter
    from actors.render_pool import PoolStep, run_steps, unfinished, worker_pool
    from actors.session import ray_session

    config = plan.config
    prepare_output(plan, rd)
    finished = shards.list_shards(rd.fs, rd.path(PAIR_DIR))
    todo = [k for k in range(plan.num_shards) if k not in finished]
    if config.max_shards is not None:
        todo = todo[:config.max_shards]
    results: list[dict[str, Any]] = []
    crash = None
    if todo:
        renderers = PoolStep(PairRenderer, render_job(plan), config.render_cpus,
                             max_size=min(config.render_workers, len(todo)))
        with ray_session(ray_address, log_dir=config.out):
            results, crash = run_steps(
                plan, [renderers, worker_pool(plan, ShardInverter, plan.job, todo)], todo,
                desc=f"produce {plan.spec.name}", counts=("rows", "dropped", "errors"))
        # a writer whose node died mid-shard leaves its temporary file; the shard was redone
        # by another actor, and no writer of this run is left
        rd.remove_temporaries(PAIR_DIR, DROPPED_DIR, shards.ERROR_DIR)
    card = build_card(plan, results, len(finished), time.perf_counter() - t0)
    write_figure5(config.out)
    report = pairs_correspondence(config.out)
    card["correspondence"] = None if report is None else {
        "pairs": report.n, "avatar_masks": "engine" if plan.schema.supports_masks
        else "G_avatar segmentation", "report": report.to_dict()}
    rd.write_json(CARD_FILE, card)
    why = unfinished(results, crash, todo)
    if why:  # the card and figure above count what is finished
        raise ProduceStageError(why)
    return card


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
