"""Rendered-dataset files, without Ray: the directory layout, atomic Parquet and JSON writes
through `pyarrow.fs` (so the output may be a local path, a shared filesystem or a cloud URI),
deterministic PNG encoding, and reading a rendered dataset back.

Layout of a rendered dataset directory:
    render_config.json          resolved config, engine schema, fingerprints (written first)
    shards/part-00000.parquet   shard k holds sample ids [k*shard_size, (k+1)*shard_size)
    errors/part-00000.parquet   rows shard k could not render (only when there were any)
    contact_sheet.png           the first 64 rendered samples
    summary.json                counts and wall time of the last run
    corrupt/shards/, errors/    damaged shards a re-run found and moved aside (then redone)
    .lock                       held by the driver writing into the directory (rundir.RunDir)
A shard file exists only once it is complete: it is written under a temporary name and renamed
(`swiftavatar.atomic`).
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from PIL import Image

from swiftavatar import atomic
from swiftavatar.atomic import join, resolve  # noqa: F401 - part of this module's interface
from swiftavatar.engines.schema import EngineSchema, VectorBatch

CONFIG_FILE = "render_config.json"
SUMMARY_FILE = "summary.json"
CONTACT_SHEET = "contact_sheet.png"
SHARD_DIR = "shards"
ERROR_DIR = "errors"
SCHEMA_META_KEY = b"swiftavatar.engine_schema"
_SHARD_RE = re.compile(r"^part-(\d+)\.parquet$")


# ---- paths, filesystems and atomic writes (swiftavatar.atomic) ------------------------
def shard_name(k: int) -> str:
    return f"part-{k:05d}.parquet"


def shard_index(name: str) -> int | None:
    """The shard number of a finished shard's file name, None for anything else."""
    m = _SHARD_RE.match(name)
    return int(m.group(1)) if m else None


def is_file(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type == pafs.FileType.File


def list_shards(fs: pafs.FileSystem, directory: str) -> dict[int, str]:
    """{k: path} of the finished shard files in `directory` (temporary files are ignored)."""
    info = fs.get_file_info(directory)
    if info.type != pafs.FileType.Directory:
        return {}
    found: dict[int, str] = {}
    for f in fs.get_file_info(pafs.FileSelector(directory)):
        k = shard_index(f.base_name)
        if k is not None and f.type == pafs.FileType.File:
            found[k] = f.path
    return dict(sorted(found.items()))


def remove_temporaries(fs: pafs.FileSystem, directory: str) -> int:
    """Delete temporary files an interrupted writer left in `directory`; returns how many.
    Only safe while no other run writes into the same directory."""
    return atomic.remove_temporaries(directory, fs=fs)


def write_bytes_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    atomic.write_bytes(path, data, fs=fs)


def write_table_atomic(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """Write a Parquet file under a temporary name, then rename it into place."""
    atomic.write_with(path, lambda tmp: pq.write_table(table, tmp, filesystem=fs), fs=fs)


def write_json_atomic(fs: pafs.FileSystem, path: str, obj: Any) -> None:
    atomic.write_json(path, obj, fs=fs)


def read_json(fs: pafs.FileSystem, path: str) -> Any | None:
    """The parsed JSON at `path`, or None when there is no such file."""
    if not is_file(fs, path):
        return None
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def parquet_num_rows(fs: pafs.FileSystem, path: str) -> int:
    """Row count from the Parquet footer (the data is not read)."""
    with fs.open_input_file(path) as f:
        return pq.ParquetFile(f).metadata.num_rows


# ---- PNG --------------------------------------------------------------------------------
def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) RGB or (H, W) grey/class-id uint8 -> PNG bytes. Deterministic: the same
    pixels always give the same bytes (fixed compression, no metadata)."""
    image = np.asarray(image)
    assert image.dtype == np.uint8, image.dtype
    assert image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3), image.shape
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (H, W, 3) or (H, W) uint8, as encoded."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im).copy()


# ---- table layouts ----------------------------------------------------------------------
def _vector_fields(schema: EngineSchema) -> list[pa.Field]:
    return ([pa.field(f"c.{p.name}", pa.float32()) for p in schema.continuous]
            + [pa.field(f"d.{p.name}", pa.int32()) for p in schema.discrete])


def shard_schema(schema: EngineSchema) -> pa.Schema:
    """Arrow schema of a rendered shard; the file metadata carries the engine schema JSON."""
    fields = [pa.field("sample_id", pa.int64()), pa.field("seed", pa.int64()),
              pa.field("engine", pa.string()), pa.field("schema_version", pa.string()),
              pa.field("schema_fingerprint", pa.string()), *_vector_fields(schema),
              pa.field("image_png", pa.binary()), pa.field("mask_png", pa.binary()),
              pa.field("size", pa.int32())]
    return pa.schema(fields, metadata={SCHEMA_META_KEY: schema.to_json().encode()})


def errors_schema(schema: EngineSchema) -> pa.Schema:
    """Arrow schema of an errors shard. Vector columns are null where the input did not parse;
    `stage` is 'parse', 'validate' or 'render'; `input` holds the raw input line, if any."""
    fields = [pa.field("sample_id", pa.int64()), pa.field("seed", pa.int64()),
              pa.field("engine", pa.string()), pa.field("schema_fingerprint", pa.string()),
              *_vector_fields(schema), pa.field("stage", pa.string()),
              pa.field("error", pa.string()), pa.field("input", pa.string())]
    return pa.schema(fields, metadata={SCHEMA_META_KEY: schema.to_json().encode()})


def shard_table(schema: EngineSchema, sample_ids: np.ndarray, seed: int, batch: VectorBatch,
                images_png: Sequence[bytes], masks_png: Sequence[bytes | None],
                size: int) -> pa.Table:
    """One shard's rows. sample_ids (N,) int64, batch of N vectors, N PNGs each."""
    n = len(sample_ids)
    assert len(batch) == n == len(images_png) == len(masks_png), (n, len(batch))
    cols: dict[str, Any] = {
        "sample_id": pa.array(np.asarray(sample_ids, np.int64), pa.int64()),
        "seed": pa.array(np.full(n, seed, np.int64), pa.int64()),
        "engine": pa.array([schema.engine] * n, pa.string()),
        "schema_version": pa.array([schema.version] * n, pa.string()),
        "schema_fingerprint": pa.array([schema.fingerprint] * n, pa.string()),
        **batch.to_arrow_columns(),
        "image_png": pa.array(list(images_png), pa.binary()),
        "mask_png": pa.array(list(masks_png), pa.binary()),
        "size": pa.array(np.full(n, size, np.int32), pa.int32()),
    }
    return pa.table(cols, schema=shard_schema(schema))


@dataclass
class ErrorRow:
    """One row that did not render: where it came from and why."""

    sample_id: int
    stage: str  # 'parse' | 'validate' | 'render'
    error: str
    continuous: np.ndarray | None = None  # (n_c,) float32, None when the input did not parse
    discrete: np.ndarray | None = None  # (n_d,) int64
    input: str | None = None


def errors_table(schema: EngineSchema, seed: int, rows: Sequence[ErrorRow]) -> pa.Table:
    n = len(rows)
    cols: dict[str, Any] = {
        "sample_id": pa.array([r.sample_id for r in rows], pa.int64()),
        "seed": pa.array([seed] * n, pa.int64()),
        "engine": pa.array([schema.engine] * n, pa.string()),
        "schema_fingerprint": pa.array([schema.fingerprint] * n, pa.string()),
    }
    for i, p in enumerate(schema.continuous):
        cols[f"c.{p.name}"] = pa.array(
            [None if r.continuous is None else float(r.continuous[i]) for r in rows], pa.float32())
    for j, p in enumerate(schema.discrete):
        cols[f"d.{p.name}"] = pa.array(
            [None if r.discrete is None else int(r.discrete[j]) for r in rows], pa.int32())
    cols["stage"] = pa.array([r.stage for r in rows], pa.string())
    cols["error"] = pa.array([r.error for r in rows], pa.string())
    cols["input"] = pa.array([r.input for r in rows], pa.string())
    return pa.table(cols, schema=errors_schema(schema))


# ---- reading a rendered dataset back -----------------------------------------------------
class RenderedDataset:
    """A rendered dataset directory (local path or URI), read with plain pyarrow."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.fs, self.base = resolve(out)
        config = read_json(self.fs, join(self.base, CONFIG_FILE))
        if config is None:
            raise FileNotFoundError(f"{out} holds no {CONFIG_FILE}: not a rendered dataset "
                                    f"(make one with `swiftavatar render`)")
        self.config: dict[str, Any] = config
        self.schema = EngineSchema.from_dict(config["engine_schema"])

    def shard_paths(self) -> dict[int, str]:
        return list_shards(self.fs, join(self.base, SHARD_DIR))

    def error_paths(self) -> dict[int, str]:
        return list_shards(self.fs, join(self.base, ERROR_DIR))

    def _read(self, paths: dict[int, str], schema: pa.Schema,
              columns: Sequence[str] | None) -> pa.Table:
        tables = [pq.read_table(p, filesystem=self.fs, columns=columns) for p in paths.values()]
        if not tables:
            empty = schema.empty_table()
            return empty.select(list(columns)) if columns else empty
        return pa.concat_tables(tables).sort_by("sample_id")

    def table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """All finished shards' rows, sorted by sample_id."""
        return self._read(self.shard_paths(), shard_schema(self.schema), columns)

    def errors(self) -> pa.Table:
        """The error rows of finished shards (an unfinished shard's file is rewritten when it
        renders), sorted by sample_id."""
        done = self.shard_paths()
        paths = {k: p for k, p in self.error_paths().items() if k in done}
        return self._read(paths, errors_schema(self.schema), None)

    def __len__(self) -> int:
        return sum(parquet_num_rows(self.fs, p) for p in self.shard_paths().values())

    def vectors(self) -> VectorBatch:
        """The rendered rows' vectors, in sample_id order."""
        cols = [f"c.{p.name}" for p in self.schema.continuous]
        cols += [f"d.{p.name}" for p in self.schema.discrete]
        t = self.table(["sample_id", *cols])
        return VectorBatch.from_columns(self.schema, {c: t.column(c) for c in cols})

    def iter_images(self, limit: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(sample_id, (H, W, 3) uint8) in sample_id order, reading one shard at a time."""
        left = limit if limit is not None else -1
        for path in self.shard_paths().values():
            t = pq.read_table(path, filesystem=self.fs,
                              columns=["sample_id", "image_png"]).sort_by("sample_id")
            for sid, png in zip(t.column("sample_id").to_pylist(),
                                t.column("image_png").to_pylist()):
                if left == 0:
                    return
                yield sid, decode_png(png)
                left -= 1
