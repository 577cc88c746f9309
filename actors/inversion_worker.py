"""The inversion actors: `swiftavatar.production.rows.PairMaker` as Ray Data callable classes
(paper section 3.2, Eq. 4-7). Ray Data runs them in an actor pool (actors.produce_stage); each
loads G_avatar, G_real and the LPIPS metric once, in __init__, and calls the library in
__call__.

`InversionWorker`: rendered rows -> pair rows.
`ShardInverter`: one row per shard from the rendering actors (its rendered rows as Arrow IPC
bytes) -> the shard written (PairMaker.produce_shard) and one summary row.
"""
from __future__ import annotations

import io
import os
import time
from typing import Any

import pyarrow as pa

from swiftavatar.production.rows import PairMaker

SHARD_SUMMARY_SCHEMA = pa.schema([
    pa.field("shard", pa.int64()), pa.field("samples", pa.int64()),
    pa.field("rows", pa.int64()), pa.field("dropped", pa.int64()),
    pa.field("errors", pa.int64()), pa.field("status", pa.string()),
    pa.field("path", pa.string()), pa.field("seconds", pa.float64()),
    pa.field("error", pa.string()),
])


def table_to_bytes(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes (how one shard's rendered rows travel between stages)."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def table_from_bytes(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(data)).read_all()


def _maybe_fail_once(marker: str | None) -> None:
    if marker and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(f"{os.getpid()}\n")
        os._exit(1)  # test only: the process dies like a lost node would


class InversionWorker(PairMaker):
    """Ray Data callable class: rendered rows (n) -> pair rows (n * (1 + A))."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        _maybe_fail_once(self.job.fail_once_marker)
        return self.invert_rows(batch)


class ShardInverter(PairMaker):
    """Ray Data entry point: rows (shard, status, error, rendered, errors) from the rendering
    actors -> one summary row per shard (SHARD_SUMMARY_SCHEMA). A shard the renderer failed
    on, or that fails here, comes back with status 'failed'; nothing of it is written."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = []
        for r in batch.to_pylist():
            t0 = time.perf_counter()
            shard = int(r["shard"])
            if r["status"] == "failed":
                out.append(_failed(shard, r["error"], 0.0))
                continue
            try:
                _maybe_fail_once(self.job.fail_once_marker)
                errors = table_from_bytes(r["errors"]) if r["errors"] else None
                out.append(self.produce_shard(shard, table_from_bytes(r["rendered"]), errors))
            except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the run
                out.append(_failed(shard, f"{type(e).__name__}: {e}",
                                   time.perf_counter() - t0))
        return pa.Table.from_pylist(out, schema=SHARD_SUMMARY_SCHEMA)


def _failed(shard: int, error: str, seconds: float) -> dict[str, Any]:
    return {"shard": shard, "samples": 0, "rows": 0, "dropped": 0, "errors": 0,
            "status": "failed", "path": "", "seconds": seconds, "error": error}


__all__ = ["InversionWorker", "SHARD_SUMMARY_SCHEMA", "ShardInverter", "table_from_bytes",
           "table_to_bytes"]
