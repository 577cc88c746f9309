"""The rendering actor: builds one engine, then turns shard descriptors into shard files.

`EngineRenderer` is a plain callable class; Ray Data runs it in an actor pool
(`actors.render_stage`). Each call gets shard descriptors (shard, start, stop and, for user
vector files, the shard's input lines), and for each one:
  1. makes the shard's vectors: sampled from (seed, sample id), or parsed from the lines;
  2. routes rows that do not parse or validate to the errors table;
  3. renders the rest in sub-batches; when a sub-batch fails, renders its rows one at a time
     so that only the rows the engine fails on go to the errors table. The engine, not the
     vectors, is to blame when it is down (`EngineUnavailableError`: the shard fails at once),
     when its process or connection broke (`ENGINE_FAULTS`: OSError, EOFError) or when every
     row of the sub-batch fails with the same exception type and the engine no longer renders
     the schema's default vector: the sub-batch is then retried on
     a freshly built engine, `engine_restarts` times at most, and after that the shard fails;
  4. writes the errors shard (if any), then the shard itself, each atomically. The shard file
     marks the shard finished: a finished shard is never rendered again, but a re-run may
     retry its rows in the errors table (`retry_errors`) and add those that render now.
It returns one summary row per shard.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from swiftavatar import shards
from swiftavatar.engines.base import Engine, EngineError, EngineUnavailableError
from swiftavatar.engines.registry import EngineSpec
from swiftavatar.engines.schema import (AvatarVector, InvalidVectorError, Prior, VectorBatch,
                                        row_errors)

SUMMARY_SCHEMA = pa.schema([
    pa.field("shard", pa.int64()), pa.field("rows", pa.int64()), pa.field("errors", pa.int64()),
    pa.field("status", pa.string()), pa.field("path", pa.string()),
    pa.field("seconds", pa.float64()), pa.field("error", pa.string()),
])
# Errors that say the engine's helper process or connection broke (BrokenPipeError,
# ConnectionError and every other OSError, EOFError): never a vector's fault.
ENGINE_FAULTS: tuple[type[BaseException], ...] = (OSError, EOFError)


@dataclass(frozen=True)
class RenderJob:
    """What every actor needs to know; picklable. `prior` is `Prior.to_dict()` or None.
    `seed` is -1 when vectors come from a user file (`from_vectors`). A shard in which at
    least `shard_failure_limit` of the (2 or more) rows sent to the engine fail is treated as
    an engine outage: nothing is written for it and the run stops (a value > 1 disables this,
    and the same rule for one sub-batch). A sub-batch the engine, not its vectors, failed is
    retried on a freshly built engine at most `engine_restarts` times."""

    engine: EngineSpec
    out: str
    seed: int
    size: int
    render_batch: int
    schema_fingerprint: str
    prior: dict[str, Any] | None = None
    from_vectors: bool = False
    shard_failure_limit: float = 1.0
    engine_restarts: int = 2


class EngineRenderer:
    """Ray Data callable class: one engine per actor, one shard file per descriptor row."""

    def __init__(self, job: RenderJob) -> None:
        self.job = job
        self.engine: Engine = self._build_engine()
        self.schema = self.engine.schema
        self.prior = Prior.from_dict(job.prior) if job.prior else Prior()
        self.prior.check(self.schema)
        self.fs, self.base = shards.resolve(job.out)

    def _build_engine(self) -> Engine:
        engine = self.job.engine.build()
        if engine.schema.fingerprint != self.job.schema_fingerprint:
            engine.close()
            raise EngineError(
                f"engine {self.job.engine.name!r} on this worker has schema "
                f"{engine.schema.version} ({engine.schema.fingerprint}) but the job was planned "
                f"for {self.job.schema_fingerprint}: install the same engine version on every node")
        return engine

    def _restart_engine(self) -> None:
        """Close the engine (whose process may be gone) and build a fresh one."""
        try:
            self.engine.close()
        except Exception:  # noqa: BLE001 - a broken engine may fail to close; it is dropped
            pass
        self.engine = self._build_engine()

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Descriptor rows (shard, start, stop[, lines][, retry]) -> one summary row per shard.
        A shard that fails comes back with status 'failed' and its error; nothing of it is
        written. With `retry` the shard is finished and its failed rows are tried again."""
        out = []
        for r in batch.to_pylist():
            t0 = time.perf_counter()
            try:
                work = self.retry_errors if r.get("retry") else self.render_shard
                out.append(work(int(r["shard"]), int(r["start"]), int(r["stop"]), r.get("lines")))
            except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the run
                out.append({"shard": int(r["shard"]), "rows": 0, "errors": 0, "status": "failed",
                            "path": "", "seconds": time.perf_counter() - t0,
                            "error": _describe(e)})
        return pa.Table.from_pylist(out, schema=SUMMARY_SCHEMA)

    # ---- one shard --------------------------------------------------------------------
    def render_shard(self, shard: int, start: int, stop: int,
                     lines: Sequence[str] | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        path = shards.join(self.base, shards.SHARD_DIR, shards.shard_name(shard))
        if shards.is_file(self.fs, path):  # finished by an earlier or concurrent attempt
            return {"shard": shard, "rows": shards.parquet_num_rows(self.fs, path), "errors": 0,
                    "status": "skipped", "path": path, "seconds": time.perf_counter() - t0,
                    "error": None}
        table, err_table = self.render_tables(shard, start, stop, lines)
        err_path = shards.join(self.base, shards.ERROR_DIR, shards.shard_name(shard))
        if err_table is not None:
            shards.write_table_atomic(self.fs, err_path, err_table)
        elif shards.is_file(self.fs, err_path):  # left by an attempt that stopped before the
            self.fs.delete_file(err_path)  # shard file; these rows render now: not errors
        shards.write_table_atomic(self.fs, path, table)  # last: marks the shard finished
        return {"shard": shard, "rows": table.num_rows,
                "errors": 0 if err_table is None else err_table.num_rows,
                "status": "written", "path": path, "seconds": time.perf_counter() - t0,
                "error": None}

    def retry_errors(self, shard: int, start: int, stop: int,
                     lines: Sequence[str] | None = None) -> dict[str, Any]:
        """Render again, one at a time, the rows of finished shard `shard` that the engine
        failed on (stage 'render' in its errors file); add those that render now to the shard
        and drop their error rows. Errors file first, then the shard, each atomically: a run
        stopped in between leaves row counts that do not add up, and the next run's check
        moves the shard aside and renders it again. Nothing is written when none renders."""
        t0 = time.perf_counter()
        path = shards.join(self.base, shards.SHARD_DIR, shards.shard_name(shard))
        err_path = shards.join(self.base, shards.ERROR_DIR, shards.shard_name(shard))
        if not (shards.is_file(self.fs, path) and shards.is_file(self.fs, err_path)):
            return {"shard": shard, "rows": 0, "errors": 0, "status": "skipped", "path": path,
                    "seconds": time.perf_counter() - t0, "error": None}
        old_err = pq.read_table(err_path, filesystem=self.fs)
        again = pc.equal(old_err["stage"], "render")
        table, new_err = self.render_tables(
            shard, start, stop, lines, only=old_err.filter(again)["sample_id"].to_numpy())
        errors = old_err
        if table.num_rows:
            old = pq.read_table(path, filesystem=self.fs)
            parts = [old_err.filter(pc.invert(again))]  # rows that did not parse or validate
            if new_err is not None:  # rows that failed again
                parts.append(new_err.cast(old_err.schema))
            errors = pa.concat_tables(parts).sort_by("sample_id")
            if errors.num_rows:
                shards.write_table_atomic(self.fs, err_path, errors)
            else:
                self.fs.delete_file(err_path)
            shards.write_table_atomic(self.fs, path, pa.concat_tables(
                [old, table.cast(old.schema)]).sort_by("sample_id"))
        return {"shard": shard, "rows": table.num_rows, "errors": errors.num_rows,
                "status": "retried", "path": path, "seconds": time.perf_counter() - t0,
                "error": None}

    def render_tables(self, shard: int, start: int, stop: int,
                      lines: Sequence[str] | None = None, only: np.ndarray | None = None
                      ) -> tuple[pa.Table, pa.Table | None]:
        """Steps 1-3 for sample ids [start, stop), nothing written: (rendered rows in the
        shard layout, errors table or None). Raises EngineError on an engine outage. With
        `only` (sample ids, a retry of rows that failed before) just those, one at a time,
        and failing ones are no outage."""
        ids = np.arange(start, stop, dtype=np.int64)  # (n,)
        if only is not None:
            pick = np.flatnonzero(np.isin(ids, only))
            ids = ids[pick]
            lines = None if lines is None else [lines[i] for i in pick]
        if lines is None:
            batch = self.schema.sample(self.job.seed, ids, self.prior)
            ok = np.ones(len(ids), bool)
            errors: dict[int, shards.ErrorRow] = {}
        else:
            assert len(lines) == len(ids), (len(lines), len(ids))
            batch, ok, errors = self._parse_lines(ids, lines)
        for r, msg in enumerate(row_errors(self.schema, batch.continuous, batch.discrete)):
            if msg and ok[r]:
                ok[r] = False
                errors[r] = self._error_row(ids[r], "validate", msg, batch, r, lines)
        good = np.flatnonzero(ok)
        images, masks, failed = self._render_isolating(batch.select(good), shard,
                                                       1 if only is not None else None)
        for k, msg in failed.items():
            r = int(good[k])
            errors[r] = self._error_row(ids[r], "render", msg, batch, r, lines)
        if (only is None and len(good) >= 2
                and len(failed) >= self.job.shard_failure_limit * len(good)):
            first = failed[min(failed)]
            raise EngineError(f"the engine failed on {len(failed)} of {len(good)} vectors of "
                              f"shard {shard} (first: {first}); nothing was written for this "
                              f"shard. Check that the engine works, then re-run to continue")
        rendered = [k for k in range(len(good)) if k not in failed]
        table = shards.shard_table(
            self.schema, ids[good[rendered]], self.job.seed, batch.select(good[rendered]),
            [images[k] for k in rendered], [masks[k] for k in rendered], self.job.size)
        err_table = None
        if errors:
            err_rows = [errors[r] for r in sorted(errors)]
            err_table = shards.errors_table(self.schema, self.job.seed, err_rows)
        return table, err_table

    def _parse_lines(self, ids: np.ndarray, lines: Sequence[str]
                     ) -> tuple[VectorBatch, np.ndarray, dict[int, shards.ErrorRow]]:
        """Parse JSON lines (AvatarVector.to_json or a plain {name: value} object). Rows that
        do not parse keep the default vector as a placeholder and are marked not ok."""
        n = len(ids)
        default = self.schema.default_vector()
        cont = np.repeat(default.continuous[None], n, axis=0)  # (n, n_c)
        disc = np.repeat(default.discrete[None], n, axis=0)  # (n, n_d)
        ok = np.zeros(n, bool)
        errors: dict[int, shards.ErrorRow] = {}
        for r, line in enumerate(lines):
            try:
                if not line.strip():
                    raise InvalidVectorError("empty line")
                v = AvatarVector.from_json(self.schema, line)
            except InvalidVectorError as e:
                errors[r] = shards.ErrorRow(int(ids[r]), "parse", f"line {int(ids[r]) + 1}: {e}",
                                            input=line)
                continue
            cont[r], disc[r], ok[r] = v.continuous, v.discrete, True
        return VectorBatch(self.schema, cont, disc), ok, errors

    def _error_row(self, sample_id: int, stage: str, msg: str, batch: VectorBatch, r: int,
                   lines: Sequence[str] | None) -> shards.ErrorRow:
        if lines is not None:
            msg = f"line {int(sample_id) + 1}: {msg}"
        return shards.ErrorRow(int(sample_id), stage, msg, batch.continuous[r].copy(),
                               batch.discrete[r].copy(), None if lines is None else lines[r])

    def _render_isolating(self, batch: VectorBatch, shard: int, step: int | None = None
                          ) -> tuple[list[bytes | None], list[bytes | None], dict[int, str]]:
        """Render in sub-batches of `step` (default `render_batch`). Returns PNGs per row (None
        where failed) and {row: error message} of the rows that failed by their own fault."""
        n = len(batch)
        images: list[bytes | None] = [None] * n
        masks: list[bytes | None] = [None] * n
        failed: dict[int, str] = {}
        step = max(1, step or self.job.render_batch)
        for s in range(0, n, step):
            failed.update(self._render_rows(batch, list(range(s, min(n, s + step))), shard,
                                            images, masks))
        return images, masks, failed

    def _render_rows(self, batch: VectorBatch, rows: list[int], shard: int, images: list,
                     masks: list) -> dict[int, str]:
        """One sub-batch; when it fails, its rows one at a time. When the engine is to blame
        (see the module doc) the sub-batch is retried on a fresh engine, and after
        `engine_restarts` restarts EngineUnavailableError fails the shard."""
        restarts = 0
        while True:
            err = self._try(batch, rows, images, masks)
            if err is None:
                return {}
            failed: dict[int, BaseException] = {}
            if not isinstance(err, ENGINE_FAULTS):
                if len(rows) == 1:
                    return {rows[0]: _describe(err)}
                failed = self._isolate(batch, rows, images, masks)
                if not self._engine_to_blame(rows, failed):
                    return {r: _describe(e) for r, e in failed.items()}
                err = next((e for e in failed.values() if isinstance(e, ENGINE_FAULTS)),
                           next(iter(failed.values())))
            if restarts >= self.job.engine_restarts:
                raise EngineUnavailableError(
                    f"engine {self.job.engine.name!r} failed on {len(rows)} of {len(rows)} "
                    f"vectors of shard {shard} ({_one_line(err)}), also on a fresh engine "
                    f"{restarts} times: the engine broke, not the vectors (nothing of the shard "
                    f"is written); check that the engine works")
            restarts += 1
            self._restart_engine()

    def _try(self, batch: VectorBatch, rows: list[int], images: list, masks: list
             ) -> BaseException | None:
        """Render `rows` into images/masks; the exception instead, but EngineUnavailableError
        (the engine is down: no row is to blame) propagates."""
        try:
            self._encode(rows, self.engine.render(batch.select(rows), self.job.size),
                         images, masks)
        except EngineUnavailableError:
            raise
        except Exception as e:  # noqa: BLE001 - the caller decides who is to blame
            return e
        return None

    def _isolate(self, batch: VectorBatch, rows: list[int], images: list, masks: list
                 ) -> dict[int, BaseException]:
        """Render `rows` one at a time: {row: exception} of those that fail. Stops at the first
        ENGINE_FAULTS error (the engine broke: the rest would fail for nothing)."""
        failed: dict[int, BaseException] = {}
        for r in rows:
            e = self._try(batch, [r], images, masks)
            if e is not None:
                failed[r] = e
                if isinstance(e, ENGINE_FAULTS):
                    break
        return failed

    def _engine_to_blame(self, rows: list[int], failed: dict[int, BaseException]) -> bool:
        """Whether the rows of a failed sub-batch, tried one at a time, blame the engine: one
        broke it (ENGINE_FAULTS), or all of them (`shard_failure_limit` of them) failed with
        the same exception type while the engine fails on the default vector too."""
        if any(isinstance(e, ENGINE_FAULTS) for e in failed.values()):
            return True
        return (len(failed) >= self.job.shard_failure_limit * len(rows)
                and len({type(e) for e in failed.values()}) == 1
                and not self._renders_default())

    def _renders_default(self) -> bool:
        """Whether the engine still renders the schema's default vector: if it does, rows that
        all failed with one exception type are bad vectors (e.g. a sub-batch of two vectors
        the engine has no asset for), not a broken engine."""
        try:
            self.engine.render(VectorBatch.stack([self.schema.default_vector()]), self.job.size)
        except EngineUnavailableError:
            raise
        except Exception:  # noqa: BLE001 - any failure here blames the engine
            return False
        return True

    @staticmethod
    def _encode(rows: list[int], out: Any, images: list, masks: list) -> None:
        for k, r in enumerate(rows):
            images[r] = shards.encode_png(out.images[k])  # (H, W, 3) uint8
            masks[r] = None if out.masks is None else shards.encode_png(out.masks[k])  # (H, W)

    def __del__(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _one_line(e: BaseException) -> str:
    """'Type: first line of the message' (an engine's message may hold a traceback)."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
