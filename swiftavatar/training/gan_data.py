"""Training images for the dual-domain generators: Parquet shards read through Ray Data.

Both domains use the rendering stage's layout, DIR/shards/part-*.parquet with PNG columns
`image_png` and (real domain) `mask_png` (class ids, swiftavatar.semantics):

* avatar: `data` is the rendering stage's output directory; only `image_png` is read (the
  discriminator is image-only).
* real, no `data`: procedural faces (`swiftavatar.faces.face_images`, which returns no
  attribute records) are rendered once, at the generator's resolution, into RUNDIR/data.
* real, `data` a face folder (images/ + masks/): converted once into RUNDIR/data.
* real, `data` a directory with shards/*.parquet holding both PNG columns: read as it is.

RUNDIR/data/faces_config.json records what was written; a shard file exists only when it is
complete, so an interrupted preparation resumes. Ray Data tasks decode the PNGs to uint8 at the
generator's resolution; each training worker turns its batch into float images in [-1, 1] and
masks on the [-1, 1] one-hot scale (`gan_steps.to_training_tensors`). Epochs repeat as long as
training needs (`epochs`). This module does not import torch, so Ray Data tasks start fast.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from swiftavatar import shards
from swiftavatar.semantics import NUM_CLASSES

FACES_CONFIG_FILE = "faces_config.json"
# procedural face presets: the default domain, or FaceDomainConfig.randomised() (light, colour,
# people, backdrops, occlusion and camera widened the way sim-to-real work does)
FACE_PRESETS = ("default", "randomised")
DATA_DIR = "data"
FACE_SCHEMA = pa.schema([pa.field("sample_id", pa.int64()), pa.field("image_png", pa.binary()),
                         pa.field("mask_png", pa.binary()), pa.field("size", pa.int32())])


class DataError(ValueError):
    """The training data cannot be used; the message says what to pass instead."""


@dataclass(frozen=True)
class FaceDataSpec:
    """Face images to write as Parquet: procedural (seed, count) or a face folder."""

    source: str          # "procedural" | "folder"
    count: int
    size: int
    shard_size: int
    seed: int = 0        # procedural only
    folder: str | None = None
    preset: str = "default"  # procedural only: FACE_PRESETS

    @property
    def num_shards(self) -> int:
        return -(-self.count // self.shard_size)

    def shard_range(self, k: int) -> tuple[int, int]:
        return k * self.shard_size, min(self.count, (k + 1) * self.shard_size)

    def manifest(self) -> dict[str, Any]:
        d = asdict(self)
        if d["preset"] == "default":     # as written before presets existed
            del d["preset"]
        return {"format": 1, **d}


@dataclass(frozen=True)
class DataPlan:
    """Where a run's training images come from."""

    directory: str                 # holds shards/
    masks: bool                    # read mask_png too (real domain)
    spec: FaceDataSpec | None      # set when the shards are written by this run


def plan_data(domain: str, data: str | None, out: str, size: int, real_count: int,
              real_seed: int, shard_size: int, avatar_masks: bool = False,
              real_faces: str = "default") -> DataPlan:
    """Decide where the images come from; raises DataError naming what is wrong.
    `avatar_masks`: domain avatar reads the engine's masks too (a mask discriminator).
    `real_faces`: the procedural faces' preset (FACE_PRESETS), real domain without data."""
    if real_faces not in FACE_PRESETS:
        raise DataError(f"--real-faces must be one of {', '.join(FACE_PRESETS)}, got "
                        f"{real_faces!r}")
    if real_faces != "default" and (domain != "real" or data is not None):
        raise DataError(f"--real-faces {real_faces} applies to procedural faces only "
                        f"(--domain real without --data)")
    run_data = shards.join(out if "://" in out else os.path.abspath(out), DATA_DIR)
    if domain == "avatar":
        if not data:
            raise DataError("domain avatar needs --data: a dataset made by `swiftavatar render`")
        try:
            rendered = shards.RenderedDataset(data)
        except FileNotFoundError as err:
            raise DataError(f"--data {data}: {err}") from None
        if avatar_masks and not rendered.schema.supports_masks:
            raise DataError(f"--data {data}: engine {rendered.schema.engine!r} renders no "
                            f"masks, so the discriminator cannot see them: train it image-only")
        return DataPlan(directory=data, masks=avatar_masks, spec=None)
    if data is None:
        return DataPlan(run_data, True, FaceDataSpec("procedural", real_count, size, shard_size,
                                                     seed=real_seed, preset=real_faces))
    root = Path(data)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        from swiftavatar.faces import FaceFolder

        n = len(FaceFolder(root, size))  # checks every image has a mask
        return DataPlan(run_data, True, FaceDataSpec("folder", n, size, shard_size,
                                                     folder=str(root.resolve())))
    files = shard_files(data)
    if files:
        fs, _ = shards.resolve(data)
        with fs.open_input_file(files[0]) as f:
            names = pq.ParquetFile(f).schema_arrow.names
        missing = [c for c in ("image_png", "mask_png") if c not in names]
        if missing:
            raise DataError(f"--data {data}: its shards lack {missing}; the real domain trains "
                            f"an image + mask discriminator and needs both PNG columns")
        return DataPlan(directory=data, masks=True, spec=None)
    raise DataError(f"--data {data}: neither a face folder (images/ + masks/) nor a directory "
                    f"with shards/*.parquet")


def shard_files(directory: str) -> list[str]:
    """Paths of the finished shard files in DIR/shards, in shard order."""
    fs, base = shards.resolve(directory)
    return list(shards.list_shards(fs, shards.join(base, shards.SHARD_DIR)).values())


def prepare_face_dir(plan: DataPlan) -> list[int]:
    """Write (or check) faces_config.json; return the shard numbers still to write."""
    assert plan.spec is not None
    fs, base = shards.resolve(plan.directory)
    path = shards.join(base, FACES_CONFIG_FILE)
    old = shards.read_json(fs, path)
    if old is None:
        shards.write_json_atomic(fs, path, plan.spec.manifest())
    elif old != plan.spec.manifest():
        diffs = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in plan.spec.manifest().items()
                 if old.get(k) != v]
        raise DataError(f"{plan.directory} holds faces made differently ({'; '.join(diffs)}); "
                        f"use a new --out, or delete that data directory")
    shard_dir = shards.join(base, shards.SHARD_DIR)
    shards.remove_temporaries(fs, shard_dir)
    done = shards.list_shards(fs, shard_dir)
    return [k for k in range(plan.spec.num_shards) if k not in done]


def write_face_shard(directory: str, spec: FaceDataSpec, k: int) -> int:
    """Render (or read from the folder) shard k's faces and write it atomically; returns rows.
    Attribute records are never produced here."""
    start, stop = spec.shard_range(k)
    ids = list(range(start, stop))
    if spec.source == "procedural":
        from swiftavatar.faces import FaceDomainConfig, face_images

        domain = FaceDomainConfig.randomised() if spec.preset == "randomised" else None
        images, masks = face_images(spec.seed, ids, spec.size, domain)  # (n,S,S,3), (n,S,S)
    elif spec.source == "folder":
        from swiftavatar.faces import FaceFolder

        images, masks = FaceFolder(spec.folder, spec.size).load_batch(ids)
    else:
        raise DataError(f"unknown face source {spec.source!r}")
    table = pa.table({
        "sample_id": pa.array(ids, pa.int64()),
        "image_png": pa.array([shards.encode_png(im) for im in images], pa.binary()),
        "mask_png": pa.array([shards.encode_png(m) for m in masks], pa.binary()),
        "size": pa.array([spec.size] * len(ids), pa.int32()),
    }, schema=FACE_SCHEMA)
    fs, base = shards.resolve(directory)
    shards.write_table_atomic(fs, shards.join(base, shards.SHARD_DIR, shards.shard_name(k)),
                              table)
    return len(ids)


# ---- decoding (Ray Data tasks) and tensors (training workers) ----------------------------
def _resize(img: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    if img.shape[0] != img.shape[1]:
        raise DataError(f"training images must be square, got {img.shape[:2]}")
    return np.asarray(Image.fromarray(img).resize(
        (size, size), Image.NEAREST if nearest else Image.LANCZOS))


def decode_batch(batch: dict[str, np.ndarray], size: int, masks: bool) -> dict[str, np.ndarray]:
    """PNG columns -> image (N, size, size, 3) uint8 [and mask (N, size, size) uint8]."""
    pngs = batch["image_png"]
    if any(p is None for p in pngs):
        raise DataError("a row has no image_png")
    images = [shards.decode_png(p) for p in pngs]
    images = [np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im[..., :3] for im in images]
    out = {"image": np.stack([_resize(im, size, False) for im in images]).astype(np.uint8)}
    if masks:
        if any(p is None for p in batch["mask_png"]):
            raise DataError("a row has no mask_png; the real domain needs a mask per image")
        m = np.stack([_resize(shards.decode_png(p), size, True) for p in batch["mask_png"]])
        if m.ndim != 3 or int(m.max(initial=0)) >= NUM_CLASSES:
            raise DataError(f"masks must be (H, W) class ids below {NUM_CLASSES}")
        out["mask"] = m.astype(np.uint8)
    assert out["image"].shape == (len(pngs), size, size, 3), out["image"].shape
    return out


def build_dataset(directory: str, size: int, masks: bool, cpus: float = 0.25):
    """A Ray Dataset of decoded uint8 images (and masks) from DIR/shards/*.parquet."""
    import ray.data

    files = shard_files(directory)
    if not files:
        raise DataError(f"{directory} holds no finished shards/*.parquet")
    fs, _ = shards.resolve(directory)
    columns = ["image_png", "mask_png"] if masks else ["image_png"]
    ds = ray.data.read_parquet(files, filesystem=fs, num_cpus=cpus,
                               shuffle="files").select_columns(columns)
    return ds.map_batches(decode_batch, fn_kwargs={"size": size, "masks": masks},
                          batch_format="numpy", batch_size=64, num_cpus=cpus)


def epochs(make_iter, limit: int | None = None) -> Iterator[Any]:
    """Chain fresh passes `make_iter()` (one epoch each) forever, or for `limit` epochs.
    Raises DataError when an epoch yields nothing (too little data for one batch)."""
    n = 0
    while limit is None or n < limit:
        empty = True
        for item in make_iter():
            empty = False
            yield item
        if empty:
            raise DataError("the training data gave no full batch in an epoch: use more "
                            "images or a smaller --batch")
        n += 1


def local_batches(directory: str, size: int, masks: bool, batch: int,
                  seed: int = 0) -> Iterable[dict[str, np.ndarray]]:
    """One shuffled epoch of decoded batches read with plain pyarrow (no Ray): for benchmarks
    and single-process use."""
    fs, _ = shards.resolve(directory)
    columns = ["image_png", "mask_png"] if masks else ["image_png"]
    tables = [pq.read_table(p, filesystem=fs, columns=columns) for p in shard_files(directory)]
    if not tables:
        raise DataError(f"{directory} holds no finished shards/*.parquet")
    table = pa.concat_tables(tables)
    order = np.random.default_rng(seed).permutation(table.num_rows)
    for i in range(0, table.num_rows - batch + 1, batch):
        rows = table.take(order[i:i + batch])
        cols = {c: np.array(rows.column(c).to_pylist(), dtype=object) for c in columns}
        yield decode_batch(cols, size, masks)


__all__ = ["DATA_DIR", "DataError", "DataPlan", "FACES_CONFIG_FILE", "FaceDataSpec",
           "build_dataset", "decode_batch", "epochs", "local_batches", "plan_data",
           "prepare_face_dir", "shard_files", "write_face_shard"]
