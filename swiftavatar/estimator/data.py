"""Training rows for the avatar estimator: Parquet shards -> (image, targets) batches.

Two dataset layouts are read:
* a paired dataset (`swiftavatar produce`): DIR/pairs/part-*.parquet, 1 + A rows per sample
  (aug_index 0 = the inverted pair, 1..A semantic augmentations); the SwiftAvatar estimator
  trains on `realistic_png` (G_real's face for the pair's latent);
* a rendered dataset (`swiftavatar render`): DIR/shards/part-*.parquet with `image_png`, the
  Baseline's input (an estimator trained on engine renders).
Both carry the vector columns `c.<name>` (float32, engine units) and `d.<name>` (int32 option
index) and the engine schema in their Parquet metadata.

A decoded batch is {"image": (N, H, W, 3) uint8, "cont": (N, n_c) float32 normalised to
[0, 1] (VectorBatch.normalized_continuous), "disc": (N, n_d) int64} over the schema's
face-role parameters (style parameters, such as a background, are never targets); "cont" /
"disc" are left out when there is no face parameter of that kind. Rows are chosen by `RowFilter`: `augmented`
False keeps aug_index 0 only (the ablation "+domain adaptation"), True keeps all ("+semantic
augmentation"); a fixed fraction of sample ids (by a hash of the id, so a sample's augmentations
never straddle the split) is held out for validation, where only aug_index 0 is used.
This module does not import torch, so Ray Data tasks start fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from swiftavatar import shards
from swiftavatar.engines.schema import EngineSchema, VectorBatch, row_errors

PAIRS, RENDER = "pairs", "render"
DEFAULT_IMAGE_COLUMN = {PAIRS: "realistic_png", RENDER: "image_png"}
IMAGE_COLUMNS = {PAIRS: ("realistic_png", "avatar_png", "reconstruction_png"),
                 RENDER: ("image_png",)}
SPLITS = ("train", "val", "all")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class EstimatorDataError(ValueError):
    """The estimator's training data cannot be used; the message says what to pass instead."""


@dataclass(frozen=True)
class DataSource:
    """A dataset directory the estimator can read: its layout, finished shard files, schema."""

    directory: str
    kind: str                    # PAIRS | RENDER
    files: tuple[str, ...]       # finished shard files, in shard order
    schema: EngineSchema

    def image_column(self, name: str | None) -> str:
        """The image column to train on (None: the layout's default), checked."""
        col = name or DEFAULT_IMAGE_COLUMN[self.kind]
        if col not in IMAGE_COLUMNS[self.kind]:
            raise EstimatorDataError(f"image column {col!r} is not in a {self.kind} dataset; "
                                     f"use one of {', '.join(IMAGE_COLUMNS[self.kind])}")
        return col

    def image_size(self, image_column: str | None = None) -> int:
        """The side of the first stored image (the data's resolution)."""
        fs, _ = shards.resolve(self.directory)
        col = self.image_column(image_column)
        with fs.open_input_file(self.files[0]) as f:
            first = pq.ParquetFile(f).read_row_group(0, columns=[col]).column(col)[0].as_py()
        if first is None:
            raise EstimatorDataError(f"{self.files[0]}: the first row has no {col}")
        return int(shards.decode_png(first).shape[0])

    def decode_size(self, image_column: str | None, input_size: int) -> int:
        """The side to decode images at for a model of `input_size`: stored images larger than
        the input are shrunk once at decode (LANCZOS), not every epoch; smaller ones are kept
        (the model's own resize enlarges them)."""
        return min(self.image_size(image_column), int(input_size))

    def columns(self, image_column: str | None) -> list[str]:
        cols = ["sample_id", *vector_columns(self.schema), self.image_column(image_column)]
        return cols + (["aug_index"] if self.kind == PAIRS else [])


def vector_columns(schema: EngineSchema) -> list[str]:
    return ([f"c.{p.name}" for p in schema.continuous]
            + [f"d.{p.name}" for p in schema.discrete])


def open_source(directory: str) -> DataSource:
    """Recognise a paired or rendered dataset directory (local path or URI)."""
    fs, base = shards.resolve(directory)
    for kind, sub in ((PAIRS, "pairs"), (RENDER, shards.SHARD_DIR)):
        found = shards.list_shards(fs, shards.join(base, sub))
        if found:
            files = tuple(found.values())
            with fs.open_input_file(files[0]) as f:
                meta = pq.ParquetFile(f).schema_arrow.metadata or {}
            if shards.SCHEMA_META_KEY not in meta:
                raise EstimatorDataError(f"{files[0]} carries no engine schema in its metadata: "
                                         f"not written by `swiftavatar produce` / `render`")
            schema = EngineSchema.from_json(meta[shards.SCHEMA_META_KEY].decode())
            return DataSource(directory, kind, files, schema)
    raise EstimatorDataError(f"{directory} holds neither pairs/part-*.parquet (make it with "
                             f"`swiftavatar produce`) nor shards/part-*.parquet (`swiftavatar "
                             f"render`)")


@dataclass(frozen=True)
class RowFilter:
    """Which rows a split uses (see the module docstring)."""

    split: str = "all"           # "train" | "val" | "all"
    augmented: bool = True       # train rows: all aug_index (True) or aug_index 0 only
    val_fraction: float = 0.0    # share of sample ids held out for validation

    def mask(self, sample_ids: np.ndarray, aug_index: np.ndarray | None) -> np.ndarray:
        """(N,) bool: the rows of this split."""
        if self.split not in SPLITS:
            raise EstimatorDataError(f"split must be one of {SPLITS}, got {self.split!r}")
        clean = np.ones(len(sample_ids), bool) if aug_index is None else aug_index == 0
        if self.split == "all":
            return clean | self.augmented
        val = is_validation(sample_ids, self.val_fraction)
        if self.split == "val":
            return val & clean
        return ~val & (clean | self.augmented)


def is_validation(sample_ids: np.ndarray, fraction: float) -> np.ndarray:
    """(N,) bool: a fixed pseudo-random `fraction` of sample ids (the same ids every run)."""
    ids = np.asarray(sample_ids, np.int64).astype(np.uint64)
    u = ((ids * _GOLDEN) >> np.uint64(11)).astype(np.float64) / float(2 ** 53)   # [0, 1)
    return u < fraction


def _resize(img: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or img.shape[:2] == (size, size):
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))


def decode_batch(batch: Mapping[str, Any], *, schema: EngineSchema, image_column: str,
                 rows: RowFilter = RowFilter(), size: int | None = None) -> dict[str, np.ndarray]:
    """Parquet columns -> {"image": (n, S, S, 3) uint8, "cont": (n, n_c) float32 in [0, 1],
    "disc": (n, n_d) int64} for the rows `rows` keeps (targets: the face-role parameters only,
    the ones the estimator predicts); `size` resizes (None: as stored, all
    images must then have one size). Raises EstimatorDataError on a bad row."""
    sid = np.asarray(batch["sample_id"], np.int64)
    aug = np.asarray(batch["aug_index"], np.int64) if "aug_index" in batch else None
    keep = np.flatnonzero(rows.mask(sid, aug))
    vec = VectorBatch.from_columns(
        schema, {c: np.asarray(batch[c])[keep] for c in vector_columns(schema)})
    bad = [(int(sid[keep[r]]), msg) for r, msg in
           enumerate(row_errors(schema, vec.continuous, vec.discrete)) if msg]
    if bad:
        raise EstimatorDataError(f"sample {bad[0][0]}: {bad[0][1]} ({len(bad)} bad rows in "
                                 f"this batch); the dataset does not match its engine schema")
    pngs = np.asarray(batch[image_column], dtype=object)[keep]
    images = []
    for r, png in enumerate(pngs):
        if png is None:
            raise EstimatorDataError(f"sample {int(sid[keep[r]])} has no {image_column}")
        im = shards.decode_png(png)
        im = np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im[..., :3]
        images.append(_resize(im, size))
    if len({im.shape for im in images}) > 1:
        raise EstimatorDataError(f"{image_column} images differ in size "
                                 f"({sorted({im.shape for im in images})[:2]}): pass a size")
    side = images[0].shape[0] if images else (size or 1)
    out: dict[str, np.ndarray] = {
        "image": (np.stack(images) if images else np.zeros((0, side, side, 3), np.uint8))
        .astype(np.uint8)}
    face_c, face_d = list(schema.face_continuous), list(schema.face_discrete)
    if face_c:                                               # the estimator's targets: the
        out["cont"] = vec.normalized_continuous()[:, face_c]  # face parameters (n, n_c) float32
    if face_d:
        out["disc"] = vec.discrete[:, face_d].astype(np.int64)   # (n, n_d)
    assert out["image"].ndim == 4 and out["image"].shape[-1] == 3, out["image"].shape
    return out


def count_rows(source: DataSource, rows: RowFilter) -> int:
    """How many rows a split has (reads only the id columns)."""
    cols = ["sample_id"] + (["aug_index"] if source.kind == PAIRS else [])
    fs, _ = shards.resolve(source.directory)
    n = 0
    for path in source.files:
        t = pq.read_table(path, filesystem=fs, columns=cols)
        aug = t.column("aug_index").to_numpy() if source.kind == PAIRS else None
        n += int(rows.mask(t.column("sample_id").to_numpy(), aug).sum())
    return n


def build_dataset(source: DataSource, rows: RowFilter, *, image_column: str | None = None,
                  size: int | None = None, cpus: float = 0.25, shuffle_files: bool = True):
    """A Ray Dataset of decoded batches (the module docstring's layout) for one split; `size`
    None keeps the stored resolution (every block then has the same image shape, even an
    empty one)."""
    import ray.data

    fs, _ = shards.resolve(source.directory)
    col = source.image_column(image_column)
    size = size or source.image_size(col)
    ds = ray.data.read_parquet(list(source.files), filesystem=fs, num_cpus=cpus,
                               shuffle="files" if shuffle_files else None
                               ).select_columns(source.columns(col))
    return ds.map_batches(decode_batch, fn_kwargs={"schema": source.schema, "image_column": col,
                                                   "rows": rows, "size": size},
                          batch_format="numpy", batch_size=64, num_cpus=cpus)


@dataclass
class EstimatorArrays:
    """A split held in memory: images (N, S, S, 3) uint8, cont (N, n_c) float32 in [0, 1],
    disc (N, n_d) int64, with the schema they follow."""

    schema: EngineSchema
    images: np.ndarray
    cont: np.ndarray
    disc: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": self.images[idx], "cont": self.cont[idx], "disc": self.disc[idx]}


def load_arrays(directory: str, rows: RowFilter = RowFilter(), *,
                image_column: str | None = None, size: int | None = None,
                limit: int | None = None) -> EstimatorArrays:
    """Read a split into memory with plain pyarrow (no Ray): tests, benchmarks, one process."""
    source = open_source(directory)
    fs, _ = shards.resolve(directory)
    col = source.image_column(image_column)
    parts: list[dict[str, np.ndarray]] = []
    n = 0
    for path in source.files:
        t = pq.read_table(path, filesystem=fs, columns=source.columns(col))
        parts.append(decode_batch(_numpy_columns(t), schema=source.schema, image_column=col,
                                  rows=rows, size=size))
        n += len(parts[-1]["image"])
        if limit is not None and n >= limit:
            break
    return arrays_from_batches(source.schema, parts, limit)


def arrays_from_batches(schema: EngineSchema, parts: list[dict[str, np.ndarray]],
                        limit: int | None = None) -> EstimatorArrays:
    parts = [p for p in parts if len(p["image"])]
    if not parts:
        raise EstimatorDataError("no rows to train on: the split is empty")
    images = np.concatenate([p["image"] for p in parts])[:limit]
    n = len(images)
    cont = (np.concatenate([p["cont"] for p in parts])[:n] if schema.face_continuous
            else np.zeros((n, 0), np.float32))
    disc = (np.concatenate([p["disc"] for p in parts])[:n] if schema.face_discrete
            else np.zeros((n, 0), np.int64))
    return EstimatorArrays(schema, images, cont, disc)


def _numpy_columns(t: pa.Table) -> dict[str, np.ndarray]:
    return {c: (np.array(t.column(c).to_pylist(), dtype=object)
                if pa.types.is_binary(t.schema.field(c).type)
                else t.column(c).to_numpy()) for c in t.column_names}


def memory_batches(arrays: EstimatorArrays, batch: int, seed: int, *, start_epoch: int = 0,
                   drop_last: bool = True) -> Iterator[Iterator[dict[str, np.ndarray]]]:
    """Epochs (each an iterator of batches) over in-memory arrays; epoch e's order depends
    only on (seed, e)."""
    n = len(arrays)
    if drop_last and n < batch:
        raise EstimatorDataError(f"{n} training rows cannot fill one batch of {batch}: use more "
                                 f"data or a smaller batch")
    epoch = start_epoch
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        stop = n - batch + 1 if drop_last else n
        yield (arrays.batch(order[i:i + batch]) for i in range(0, stop, batch))
        epoch += 1


__all__ = ["DEFAULT_IMAGE_COLUMN", "DataSource", "EstimatorArrays", "EstimatorDataError",
           "IMAGE_COLUMNS", "PAIRS", "RENDER", "RowFilter", "arrays_from_batches",
           "build_dataset", "count_rows", "decode_batch", "is_validation", "load_arrays",
           "memory_batches", "open_source", "vector_columns"]
