"""The imitator's rows: a rendered dataset (`swiftavatar render`: DIR/shards/part-*.parquet
with `image_png` and the vector columns) -> batches {"image": (N, S, S, 3) uint8, "cont":
(N, n_c) float32 in [0, 1], "disc": (N, n_d) int64} over every parameter of the schema (the
render depends on style parameters too, unlike the estimator's face-only targets). The
held-out split is the estimator's (a fixed share of sample ids, by hash). No torch import.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from swiftavatar import shards
from swiftavatar.engines.schema import VectorBatch
from swiftavatar.estimator.data import (RENDER, DataSource, EstimatorDataError, RowFilter,
                                        count_rows, decode_batch, open_source, vector_columns)

IMAGE_COLUMN = "image_png"


def open_renders(directory: str) -> DataSource:
    """The rendered dataset at `directory`; a paired dataset or anything else is refused."""
    source = open_source(directory)
    if source.kind != RENDER:
        raise EstimatorDataError(f"{directory} is a {source.kind} dataset; the imitator trains "
                                 f"on engine renders: give a `swiftavatar render` directory")
    return source


def decode_renders(batch: Mapping[str, Any], *, source: DataSource, rows: RowFilter,
                   size: int) -> dict[str, np.ndarray]:
    """Parquet columns -> the module docstring's batch for the rows of `rows`, images resized
    to `size` (validated like the estimator's rows)."""
    schema = source.schema
    images = decode_batch(batch, schema=schema, image_column=IMAGE_COLUMN, rows=rows,
                          size=size)["image"]
    keep = np.flatnonzero(rows.mask(np.asarray(batch["sample_id"], np.int64), None))
    vec = VectorBatch.from_columns(schema, {c: np.asarray(batch[c])[keep]
                                            for c in vector_columns(schema)})
    return {"image": images, "cont": vec.normalized_continuous(),
            "disc": vec.discrete.astype(np.int64)}


def build_render_dataset(source: DataSource, rows: RowFilter, *, size: int,
                         cpus: float = 0.25, shuffle_files: bool = True):
    """A Ray Dataset of decoded batches for one split."""
    import ray.data

    fs, _ = shards.resolve(source.directory)
    ds = ray.data.read_parquet(list(source.files), filesystem=fs, num_cpus=cpus,
                               shuffle="files" if shuffle_files else None
                               ).select_columns(source.columns(IMAGE_COLUMN))
    return ds.map_batches(decode_renders, fn_kwargs={"source": source, "rows": rows,
                                                     "size": size},
                          batch_format="numpy", batch_size=64, num_cpus=cpus)


def load_renders(source: DataSource, rows: RowFilter, *, size: int,
                 limit: int | None = None) -> dict[str, np.ndarray]:
    """A split in memory with plain pyarrow (no Ray): the report, tests. At most `limit` rows."""
    fs, _ = shards.resolve(source.directory)
    parts: list[dict[str, np.ndarray]] = []
    n = 0
    for path in source.files:
        t = pq.read_table(path, filesystem=fs, columns=source.columns(IMAGE_COLUMN))
        cols = {c: (np.array(t.column(c).to_pylist(), dtype=object)
                    if pa.types.is_binary(t.schema.field(c).type) else t.column(c).to_numpy())
                for c in t.column_names}
        parts.append(decode_renders(cols, source=source, rows=rows, size=size))
        n += len(parts[-1]["image"])
        if limit is not None and n >= limit:
            break
    if not parts:
        raise EstimatorDataError(f"{source.directory}: no rows in the {rows.split} split")
    return {k: np.concatenate([p[k] for p in parts])[:limit] for k in parts[0]}


__all__ = ["IMAGE_COLUMN", "build_render_dataset", "count_rows", "decode_renders",
           "load_renders", "open_renders"]
