"""The rendering stage on Ray Data: sample (or read) avatar vectors, render them with an engine
in an actor pool, and write a sharded Parquet dataset (layout in `swiftavatar.shards`).

Exactly once: the dataset's rows are shard descriptors, each actor writes whole shards
atomically, and a run only schedules shards whose file does not exist yet. An interrupted run
loses nothing and a re-run duplicates nothing. Same config, same seed: same rows.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from swiftavatar import __version__, shards
from swiftavatar.config import StageConfig, option
from swiftavatar.engines.registry import EngineSpec
from swiftavatar.engines.schema import EngineSchema, Prior

MANIFEST_FORMAT = 1
CONTACT_SHEET_N = 64  # 8 x 8
CONTACT_TILE_MAX = 128  # px; larger renders are shrunk on the sheet


class ConfigMismatchError(ValueError):
    """The output directory holds a dataset made with a different config."""


class RenderStageError(RuntimeError):
    """The stage stopped; finished shards are kept and a re-run continues."""


@dataclass(frozen=True)
class RenderConfig(StageConfig):
    """The rendering stage. Fields marked (dataset) define the dataset: a re-run into the same
    `out` must repeat them. The rest only say how to run."""

    engine: str = option(help="engine name (`swiftavatar engines list`), module:attr, or "
                              "grpc://HOST:PORT")  # (dataset)
    out: str = option(help="output directory (local path or s3://... URI)")  # any pyarrow.fs URI
    # (dataset) paper Sec. 4.1: 50000 TikTok, 10000 Alter
    count: int = option(50_000, help="number of vectors to sample (required unless --vectors)")
    seed: int = option(0, help="sampling seed")  # (dataset) sample i depends only on (seed, i)
    size: int = option(256, help="render size in pixels")  # (dataset)
    shard_size: int = option(256, help="rows per shard")  # (dataset) rows per shard file
    # (dataset) Prior.to_dict(), 'suggested' (the engine's own recommendation, recorded
    # resolved in the manifest) or None = uniform
    prior: dict[str, Any] | str | None = option(
        None, metavar="PRIOR.json|suggested",
        help="sampling prior: 'suggested' (the engine's recommended prior), or a JSON file "
             "{continuous: uniform|normal, normal_width, discrete_weights: {param: {option: "
             "weight}}}")
    # (dataset) engine kwargs, less the engine's `run_options` (a gRPC address or timeout may
    # change on a resume)
    engine_options: dict[str, Any] = option(
        default_factory=dict, flag="--engine-option",
        help="engine constructor option (VALUE parsed as JSON when it parses); repeatable")
    vectors: str | None = option(  # (dataset) JSONL of vectors to render instead of sampling
        None, metavar="FILE.jsonl",
        help="render these vectors instead of sampling: one JSON object per line, an "
             "AvatarVector JSON or a plain {parameter: value} object; bad lines go to the "
             "errors table")
    workers: int = option(2, help="actor pool size")  # most actors at once
    min_workers: int | None = option(None, help="smallest actor pool (default: --workers)")
    # fractional: a pool asking for every CPU hangs Ray Data
    cpus_per_worker: float = option(0.5, help="CPUs each actor reserves")
    gpus_per_worker: float = option(
        0.0, help="GPUs each actor reserves (default {default}; > 0 only on GPU clusters)")
    render_batch: int = option(32, help="vectors per engine.render call")
    max_shards: int | None = option(
        None, help="render at most this many missing shards, then stop (re-run for more)")
    shard_failure_limit: float = 1.0  # see actors.renderer.RenderJob
    overwrite: bool = option(  # delete the dataset in `out` and start again
        False, help="replace a dataset with a different config already in --out")
    progress: bool = option(True, flag="--no-progress", help="no progress bar")  # tqdm, stderr

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)] for bad values; empty when the config is usable."""
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(bool(self.engine), "engine", "must name an engine")
        need(bool(self.out), "out", "must name an output directory")
        need(self.count >= 1, "count", "must be >= 1")
        need(0 <= self.seed < 2 ** 32, "seed", "must be in 0..2**32-1")
        need(16 <= self.size <= 2048, "size", "must be in 16..2048")
        need(self.shard_size >= 1, "shard_size", "must be >= 1")
        need(self.workers >= 1, "workers", "must be >= 1")
        need(self.min_workers is None or 1 <= self.min_workers <= self.workers, "min_workers",
             f"must be in 1..workers ({self.workers})")
        need(self.cpus_per_worker > 0, "cpus_per_worker", "must be > 0")
        need(self.gpus_per_worker >= 0, "gpus_per_worker", "must be >= 0")
        need(self.render_batch >= 1, "render_batch", "must be >= 1")
        need(self.max_shards is None or self.max_shards >= 1, "max_shards", "must be >= 1")
        need(self.shard_failure_limit > 0, "shard_failure_limit", "must be > 0")
        return out


@dataclass
class RenderPlan:
    """What a run will do, resolved on the driver before any actor starts."""

    config: RenderConfig
    spec: EngineSpec
    schema: EngineSchema
    count: int  # rows in the dataset (the vector file's line count with `vectors`)
    lines: list[str] | None  # the vector file's lines, or None when sampling
    manifest: dict[str, Any]

    @property
    def num_shards(self) -> int:
        return -(-self.count // self.config.shard_size)

    def shard_range(self, k: int) -> tuple[int, int]:
        s = self.config.shard_size
        return k * s, min(self.count, (k + 1) * s)


@dataclass
class RenderSummary:
    """Counts over the whole dataset on disk after this run, plus this run's own work."""

    out: str
    engine: str
    schema_fingerprint: str
    samples: int  # rows the dataset is meant to hold (rendered + errors when complete)
    rendered: int
    errors: int
    shards_total: int
    shards_done: int
    shards_written: int  # by this run
    shards_skipped: int  # already finished before this run
    wall_s: float

    @property
    def complete(self) -> bool:
        return self.shards_done == self.shards_total

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "complete": self.complete}


# ---- planning ----------------------------------------------------------------------------
def plan_render(config: RenderConfig) -> RenderPlan:
    """Validate the config, build the engine once for its schema, read the vector file, and
    make the manifest. No Ray; raises ValueError subclasses a user can act on."""
    config.validate()
    spec = EngineSpec.parse(config.engine, config.engine_options)
    with spec.build() as engine:
        schema = engine.schema
        # how the engine is reached (a server address, timeouts) is not part of the dataset
        identity_options = {k: v for k, v in spec.options.items() if k not in engine.run_options}
        if config.prior == "suggested":  # the engine author's prior (Engine.suggested_prior)
            prior = engine.suggested_prior() or Prior()
        else:
            prior = Prior.from_dict(config.prior) if config.prior is not None else Prior()
    prior.check(schema)
    lines: list[str] | None = None
    vectors_sha = None
    count = config.count
    if config.vectors is not None:
        fs, path = shards.resolve(config.vectors)
        if not shards.is_file(fs, path):
            raise FileNotFoundError(f"vector file {config.vectors} does not exist")
        with fs.open_input_stream(path) as f:
            data = f.read()
        vectors_sha = hashlib.sha256(data).hexdigest()
        lines = _jsonl_lines(data, config.vectors)
        if not lines:
            raise ValueError(f"vector file {config.vectors} is empty")
        count = len(lines)
    dataset = {
        "engine": spec.name,
        "engine_options": identity_options,
        "source": "vectors" if lines is not None else "sample",
        "count": count,
        "seed": -1 if lines is not None else config.seed,
        "prior": None if lines is not None else prior.to_dict(),
        "vectors_sha256": vectors_sha,
        "size": config.size,
        "shard_size": config.shard_size,
        "schema_fingerprint": schema.fingerprint,
    }
    blob = json.dumps(dataset, sort_keys=True, default=str).encode()
    manifest = {
        "format": MANIFEST_FORMAT,
        "dataset": dataset,
        "config_fingerprint": hashlib.sha256(blob).hexdigest()[:16],
        "engine_schema": schema.to_dict(),
        "schema_fingerprint": schema.fingerprint,
        "vectors_path": config.vectors,
        "created_by": f"swiftavatar {__version__}",
        "numpy": np.__version__,  # sampling streams are numpy's: record the version
    }
    return RenderPlan(config, spec, schema, count, lines, manifest)


def _jsonl_lines(data: bytes, name: str) -> list[str]:
    """The lines of a UTF-8 JSONL file. Only LF (or CR LF) ends a line: JSON strings may hold
    U+2028 and other characters that `str.splitlines` splits on, which would shift every later
    sample id and line number."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"vector file {name} is not UTF-8 text (byte {e.start}): write it as "
                         f"UTF-8 JSON lines") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    def short(v: Any) -> str:
        s = json.dumps(v, sort_keys=True, default=str)
        return s if len(s) <= 60 else s[:57] + "..."

    keys = sorted(set(old) | set(new))
    return [f"{k} {short(old.get(k))} -> {short(new.get(k))}" for k in keys
            if json.dumps(old.get(k), sort_keys=True, default=str)
            != json.dumps(new.get(k), sort_keys=True, default=str)]


def prepare_output(plan: RenderPlan) -> None:
    """Write render_config.json, or check that the one there matches (resume). With
    `overwrite`, delete the dataset already there first."""
    cfg = plan.config
    fs, base = shards.resolve(cfg.out)
    cfg_path = shards.join(base, shards.CONFIG_FILE)
    old = shards.read_json(fs, cfg_path)
    if cfg.overwrite:
        for sub in (shards.SHARD_DIR, shards.ERROR_DIR):
            if fs.get_file_info(shards.join(base, sub)).type == pafs.FileType.Directory:
                fs.delete_dir(shards.join(base, sub))
        for name in (shards.SUMMARY_FILE, shards.CONTACT_SHEET, shards.CONFIG_FILE):
            if shards.is_file(fs, shards.join(base, name)):
                fs.delete_file(shards.join(base, name))
        old = None
    if old is None:
        if shards.list_shards(fs, shards.join(base, shards.SHARD_DIR)):
            raise ConfigMismatchError(f"{cfg.out} holds shards but no {shards.CONFIG_FILE}; "
                                      f"use --overwrite to replace them, or a new --out")
        shards.write_json_atomic(fs, cfg_path, plan.manifest)
        return
    diffs = _differences(old.get("dataset", {}), plan.manifest["dataset"])
    if diffs:
        raise ConfigMismatchError(
            f"{cfg.out} already holds a dataset rendered with a different config ("
            + "; ".join(diffs) + "); use --overwrite to replace it, or a new --out")
    for sub in (shards.SHARD_DIR, shards.ERROR_DIR):
        shards.remove_temporaries(fs, shards.join(base, sub))


# ---- running -----------------------------------------------------------------------------
def run_render_stage(config: RenderConfig, ray_address: str | None = None) -> RenderSummary:
    """Render the dataset `config` describes into `config.out`, resuming what is there.
    Uses the running Ray instance, else the cluster at `ray_address`, else starts one (see
    actors.session.ray_session)."""
    from actors.renderer import RenderJob
    from actors.session import ray_session

    t0 = time.perf_counter()
    plan = plan_render(config)
    prepare_output(plan)
    fs, base = shards.resolve(config.out)
    finished = shards.list_shards(fs, shards.join(base, shards.SHARD_DIR))
    todo = [k for k in range(plan.num_shards) if k not in finished]
    if config.max_shards is not None:
        todo = todo[:config.max_shards]
    # Actors resolve `out` themselves, maybe in another working directory: pass it absolute.
    out = config.out if "://" in config.out else os.path.abspath(config.out)
    job = RenderJob(engine=plan.spec, out=out, seed=plan.manifest["dataset"]["seed"],
                    size=config.size, render_batch=config.render_batch,
                    schema_fingerprint=plan.schema.fingerprint,
                    prior=plan.manifest["dataset"]["prior"], from_vectors=plan.lines is not None,
                    shard_failure_limit=config.shard_failure_limit)
    results: list[dict[str, Any]] = []
    if todo:
        with ray_session(ray_address):
            results = _run_pool(plan, job, todo)
        for sub in (shards.SHARD_DIR, shards.ERROR_DIR):   # left by writers whose node died
            shards.remove_temporaries(fs, shards.join(base, sub))
    summary = _summarize(plan, results, len(finished), time.perf_counter() - t0)
    write_contact_sheet(config.out)
    shards.write_json_atomic(fs, shards.join(base, shards.SUMMARY_FILE), summary.to_dict())
    return summary


def _check_resources(config: RenderConfig) -> None:
    import ray

    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0.0), have.get("GPU", 0.0)
    if config.cpus_per_worker > cpus:
        raise ValueError(f"cpus_per_worker {config.cpus_per_worker} is more than the Ray "
                         f"cluster's {cpus:g} CPUs: no actor could start")
    if config.gpus_per_worker > gpus:
        raise ValueError(f"gpus_per_worker {config.gpus_per_worker} but the Ray cluster has "
                         f"{gpus:g} GPUs: no actor could start (use 0 on CPU-only clusters)")


def _run_pool(plan: RenderPlan, job: Any, todo: list[int]) -> list[dict[str, Any]]:
    """Render the shards `todo` in a Ray Data actor pool; one summary dict per shard. Raises
    RenderStageError when a shard failed or the pool could not run."""
    import gc

    import ray

    _check_resources(plan.config)
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats)
    ctx.enable_progress_bars = False  # our own bar counts shards
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    try:
        results, crash = _iterate_pool(plan, job, todo)
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats = saved
        # An execution that stopped early frees its actor pool only when garbage-collected.
        gc.collect()
    failed = [r for r in results if r["status"] == "failed"]
    if crash or failed:
        why = crash or f"shard {failed[0]['shard']}: {failed[0]['error']}"
        n_failed = len(failed) if not crash else len(todo) - len(results) + len(failed)
        raise RenderStageError(
            f"{n_failed} of {len(todo)} shards did not finish ({why}); finished shards are "
            f"kept, re-run the same command to continue")
    return results


def _iterate_pool(plan: RenderPlan, job: Any, todo: list[int]
                  ) -> tuple[list[dict[str, Any]], str | None]:
    """Run the pool and collect summaries; (summaries, None) or (summaries so far, error)."""
    import ray
    from tqdm.auto import tqdm

    from actors.renderer import EngineRenderer

    cfg = plan.config
    items = []
    for k in todo:
        start, stop = plan.shard_range(k)
        item: dict[str, Any] = {"shard": k, "start": start, "stop": stop}
        if plan.lines is not None:
            item["lines"] = plan.lines[start:stop]
        items.append(item)
    size = min(cfg.workers, len(todo))
    min_size = min(cfg.min_workers or cfg.workers, size)
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        EngineRenderer,
        fn_constructor_kwargs={"job": job},
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=min_size, max_size=size),
        num_cpus=cfg.cpus_per_worker,
        num_gpus=cfg.gpus_per_worker or None,
    )
    results: list[dict[str, Any]] = []
    counts = {"rows": 0, "errors": 0, "failed": 0}
    it = iter(ds.iter_rows())
    try:
        with tqdm(total=len(todo), unit="shard", desc=f"render {plan.spec.name}",
                  disable=not cfg.progress) as bar:
            for r in it:
                results.append(dict(r))
                counts["rows"] += int(r["rows"])
                counts["errors"] += int(r["errors"])
                counts["failed"] += r["status"] == "failed"
                bar.update(1)
                bar.set_postfix(counts, refresh=False)
    except Exception as e:  # noqa: BLE001 - e.g. the engine cannot be built on a worker
        return results, _root_cause(e)
    finally:
        it.close()
    return results, None


def _root_cause(e: BaseException) -> str:
    """'Type: message' of the worker's original error. Ray wraps it (sometimes in empty
    wrappers) and appends the worker's traceback, whose last line names the original."""
    chain: list[BaseException] = [e]
    while len(chain) < 16:
        inner = getattr(chain[-1], "cause", None) or chain[-1].__cause__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    for err in reversed(chain):  # innermost first
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        if lines:
            m = re.match(r"^(?:[\w.]+\.)?(\w+: .*)$", lines[-1])
            return m.group(1) if m else f"{type(err).__name__}: {lines[-1]}"
    return type(e).__name__


def _summarize(plan: RenderPlan, results: list[dict[str, Any]], skipped: int,
               wall_s: float) -> RenderSummary:
    fs, base = shards.resolve(plan.config.out)
    done = shards.list_shards(fs, shards.join(base, shards.SHARD_DIR))
    errs = shards.list_shards(fs, shards.join(base, shards.ERROR_DIR))
    return RenderSummary(
        out=plan.config.out, engine=plan.spec.name, schema_fingerprint=plan.schema.fingerprint,
        samples=plan.count,
        rendered=sum(shards.parquet_num_rows(fs, p) for p in done.values()),
        errors=sum(shards.parquet_num_rows(fs, p) for k, p in errs.items() if k in done),
        shards_total=plan.num_shards, shards_done=len(done),
        shards_written=sum(r["status"] == "written" for r in results), shards_skipped=skipped,
        wall_s=round(wall_s, 3))


def write_contact_sheet(out: str, n: int = CONTACT_SHEET_N) -> bool:
    """8 x 8 grid of the first `n` rendered samples, labelled with their sample ids, written
    to contact_sheet.png. Returns False when nothing is rendered yet."""
    from PIL import Image

    from swiftavatar import viz

    data = shards.RenderedDataset(out)
    tiles, labels = [], []
    for sid, img in data.iter_images(limit=n):
        if img.shape[0] > CONTACT_TILE_MAX:
            img = np.asarray(Image.fromarray(img).resize((CONTACT_TILE_MAX, CONTACT_TILE_MAX),
                                                         Image.BILINEAR))
        tiles.append(img)  # (h, w, 3) uint8
        labels.append(str(sid))
    if not tiles:
        return False
    sheet = viz.grid(np.stack(tiles), ncols=8, labels=labels)
    shards.write_bytes_atomic(data.fs, shards.join(data.base, shards.CONTACT_SHEET),
                              shards.encode_png(sheet))
    return True
