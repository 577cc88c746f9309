"""The rendering stage on Ray Data: sample (or read) avatar vectors, render them with an engine
in an actor pool, and write a sharded Parquet dataset (layout in `swiftavatar.shards`).

Exactly once: the dataset's rows are shard descriptors, each actor writes whole shards
atomically, and a run only schedules shards whose file does not exist yet. An interrupted run
loses nothing and a re-run duplicates nothing. Same config, same seed: same rows. The output
directory is a `swiftavatar.rundir.RunDir`: one driver at a time (the lock), the manifest
checked on a re-run, and finished shards verified (footer, row count) before a resume.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from swiftavatar import __version__, atomic, shards
from swiftavatar.config import StageConfig, option
from swiftavatar.engines.registry import EngineSpec
from swiftavatar.engines.schema import EngineSchema, Prior
from actors.render_pool import RenderStageError  # noqa: F401 - raised by run_render_stage
from swiftavatar.rundir import CORRUPT_DIR, RunDir, RunMismatchError, locked

MANIFEST_FORMAT = 1
CONTACT_SHEET_N = 64  # 8 x 8
CONTACT_TILE_MAX = 128  # px; larger renders are shrunk on the sheet


class ConfigMismatchError(RunMismatchError):
    """The output directory holds a dataset made with a different config."""


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
    size: int = option(256, help="render size in pixels (default: the engine's default_size, "
                                     "256 for toon and avataaars)")  # (dataset)
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
    # a re-run renders the vectors of finished shards that are in errors/ with stage 'render'
    # again, one at a time, and adds those that render now (a broken engine blamed them)
    retry_errors: bool = option(
        True, flag="--no-retry-errors",
        help="on a re-run, leave the vectors in errors/ alone (by default a re-run renders "
             "the ones the engine failed on again and adds those that render now)")
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
    recovered: int = 0  # rows from errors/ that this run rendered (retry_errors)

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


def prepare_output(plan: RenderPlan, rundir: RunDir | None = None) -> list[int]:
    """Write render_config.json, or check that the one there matches (resume), clear what
    interrupted writers left and verify the finished shards (a damaged one is moved to
    corrupt/ and rendered again). With `overwrite`, delete the dataset already there first.
    Returns the shards moved aside. Hold the run's lock (run_render_stage does)."""
    cfg = plan.config
    rd = rundir or RunDir(cfg.out, "render")
    rd.create()
    if cfg.overwrite:
        rd.delete(shards.SHARD_DIR, shards.ERROR_DIR, CORRUPT_DIR, shards.SUMMARY_FILE,
                  shards.CONTACT_SHEET, shards.CONFIG_FILE)
    if rd.read_json(shards.CONFIG_FILE) is None and shards.list_shards(
            rd.fs, rd.path(shards.SHARD_DIR)):
        raise ConfigMismatchError(f"{cfg.out} holds shards but no {shards.CONFIG_FILE}; "
                                  f"use --overwrite to replace them, or a new --out")
    old = rd.check_identity(shards.CONFIG_FILE, plan.manifest, section="dataset", write=False,
                            holds="a dataset rendered with a different config",
                            fix="use --overwrite to replace it, or a new --out",
                            error=ConfigMismatchError)
    if old is None:
        return []
    rd.remove_temporaries(shards.SHARD_DIR, shards.ERROR_DIR)

    def expected_rows(k: int) -> int:  # the plan's range less the shard's rows in errors/
        if k >= plan.num_shards:
            raise ValueError(f"shard {k} is not in the plan ({plan.num_shards} shards)")
        start, stop = plan.shard_range(k)
        return stop - start - rd.shard_rows(shards.ERROR_DIR, k)

    return rd.verify_shards(shards.SHARD_DIR, expected_rows, companions=(shards.ERROR_DIR,))


# ---- running -----------------------------------------------------------------------------
def run_render_stage(config: RenderConfig, ray_address: str | None = None) -> RenderSummary:
    """Render the dataset `config` describes into `config.out`, resuming what is there.
    Uses the running Ray instance, else the cluster at `ray_address`, else starts one (see
    actors.session.ray_session). A second run into the same local `out` while this one holds
    it raises RunLockedError."""
    t0 = time.perf_counter()
    plan = plan_render(config)   # one driver per dataset: a second is refused with the first's pid
    return locked(config.out, "render", lambda rd: _run_locked(plan, rd, t0, ray_address))


def _run_locked(plan: RenderPlan, rd: RunDir, t0: float,
                ray_address: str | None) -> RenderSummary:
    from actors.render_pool import run_pool
    from actors.renderer import RenderJob
    from actors.session import ray_session

    config = plan.config
    prepare_output(plan, rd)
    fs, base = rd.fs, rd.base
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
    retry = _shards_to_retry(rd, finished) if config.retry_errors else []
    results: list[dict[str, Any]] = []
    if todo or retry:
        with ray_session(ray_address, log_dir=config.out):
            results = run_pool(plan, job, todo, retry)
        rd.remove_temporaries(shards.SHARD_DIR, shards.ERROR_DIR)  # writers whose node died
    summary = _summarize(plan, results, len(finished), time.perf_counter() - t0)
    write_contact_sheet(config.out)
    rd.write_json(shards.SUMMARY_FILE, summary.to_dict())
    return summary


def _shards_to_retry(rd: RunDir, finished: dict[int, str]) -> list[int]:
    """The finished shards whose errors file holds rows the engine failed on (stage 'render';
    rows that did not parse or validate would fail again)."""
    import pyarrow.parquet as pq

    errs = shards.list_shards(rd.fs, rd.path(shards.ERROR_DIR))
    return [k for k, p in errs.items() if k in finished and "render" in pq.read_table(
        p, filesystem=rd.fs, columns=["stage"]).column("stage").to_pylist()]


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
        wall_s=round(wall_s, 3),
        recovered=sum(r["rows"] for r in results if r["status"] == "retried"))


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
    atomic.write_bytes(shards.join(data.base, shards.CONTACT_SHEET), shards.encode_png(sheet),
                       fs=data.fs)
    return True
