"""The rendering actor: builds one engine, then turns shard descriptors into shard files.

`EngineRenderer` is a plain callable class; Ray Data runs it in an actor pool
(`actors.render_stage`). Each call gets shard descriptors (shard, start, stop and, for user
vector files, the shard's input lines), and for each one:
  1. makes the shard's vectors: sampled from (seed, sample id), or parsed from the lines;
  2. routes rows that do not parse or validate to the errors table;
  3. renders the rest in sub-batches; when a sub-batch fails, renders its rows one at a time
     so that only the rows the engine fails on go to the errors table (an engine that is down,
     `EngineUnavailableError`, fails the whole shard instead);
  4. writes the errors shard (if any), then the shard itself, each atomically. The shard file
     marks the shard finished: a finished shard is never rendered or written again.
It returns one summary row per shard.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

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


@dataclass(frozen=True)
class RenderJob:
    """What every actor needs to know; picklable. `prior` is `Prior.to_dict()` or None.
    `seed` is -1 when vectors come from a user file (`from_vectors`). A shard in which at
    least `shard_failure_limit` of the (2 or more) rows sent to the engine fail is treated as
    an engine outage: nothing is written for it and the run stops (a value > 1 disables this)."""

    engine: EngineSpec
    out: str
    seed: int
    size: int
    render_batch: int
    schema_fingerprint: str
    prior: dict[str, Any] | None = None
    from_vectors: bool = False
    shard_failure_limit: float = 1.0


class EngineRenderer:
    """Ray Data callable class: one engine per actor, one shard file per descriptor row."""

    def __init__(self, job: RenderJob) -> None:
        self.job = job
        self.engine: Engine = job.engine.build()
        self.schema = self.engine.schema
        if self.schema.fingerprint != job.schema_fingerprint:
            raise EngineError(
                f"engine {job.engine.name!r} on this worker has schema {self.schema.version} "
                f"({self.schema.fingerprint}) but the job was planned for "
                f"{job.schema_fingerprint}: install the same engine version on every node")
        self.prior = Prior.from_dict(job.prior) if job.prior else Prior()
        self.prior.check(self.schema)
        self.fs, self.base = shards.resolve(job.out)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Descriptor rows (shard, start, stop[, lines]) -> one summary row per shard. A shard
        that fails comes back with status 'failed' and its error; nothing of it is written."""
        out = []
        for r in batch.to_pylist():
            t0 = time.perf_counter()
            try:
                out.append(self.render_shard(int(r["shard"]), int(r["start"]), int(r["stop"]),
                                             r.get("lines")))
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

    def render_tables(self, shard: int, start: int, stop: int,
                      lines: Sequence[str] | None = None) -> tuple[pa.Table, pa.Table | None]:
        """Steps 1-3 for sample ids [start, stop), nothing written: (rendered rows in the
        shard layout, errors table or None). Raises EngineError on an engine outage."""
        ids = np.arange(start, stop, dtype=np.int64)  # (n,)
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
        images, masks, failed = self._render_isolating(batch.select(good))
        for k, msg in failed.items():
            r = int(good[k])
            errors[r] = self._error_row(ids[r], "render", msg, batch, r, lines)
        if len(good) >= 2 and len(failed) >= self.job.shard_failure_limit * len(good):
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

    def _render_isolating(self, batch: VectorBatch
                          ) -> tuple[list[bytes | None], list[bytes | None], dict[int, str]]:
        """Render in sub-batches of `render_batch`; a failing sub-batch is retried one vector
        at a time. Returns PNGs per row (None where failed) and {row: error message}."""
        n = len(batch)
        images: list[bytes | None] = [None] * n
        masks: list[bytes | None] = [None] * n
        failed: dict[int, str] = {}
        step = max(1, self.job.render_batch)
        for s in range(0, n, step):
            rows = list(range(s, min(n, s + step)))
            try:
                self._encode(rows, self.engine.render(batch.select(rows), self.job.size),
                             images, masks)
            except EngineUnavailableError:  # the engine is down: no row is to blame
                raise
            except Exception as e:  # noqa: BLE001 - isolate the rows the engine fails on
                if len(rows) == 1:
                    failed[rows[0]] = _describe(e)
                    continue
                for r in rows:
                    try:
                        self._encode([r], self.engine.render(batch.select([r]), self.job.size),
                                     images, masks)
                    except EngineUnavailableError:
                        raise
                    except Exception as e1:  # noqa: BLE001
                        failed[r] = _describe(e1)
        return images, masks, failed

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
