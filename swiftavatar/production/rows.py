"""The row maker: engine renders -> paired rows (paper section 3.2, Eq. 4-7), Ray-free.

`PairMaker` loads G_avatar, G_real and the LPIPS metric once, in __init__. `invert_rows` takes
rendered rows (the rendering stage's shard layout: sample_id, seed, vector columns, image_png,
mask_png) and returns the pair rows, 1 + A per sample:
  aug_index 0: w* = argmin Eq. 4-5 from the start code, its reconstruction G_avatar(w*) and the
               realistic face G_real(w*) (Eq. 6);
  aug_index a in 1..A: Eq. 7 applied to w* (noise seeded by (seed, sample_id), so a row never
               depends on which batch or process it ran in), realistic face G_real(w_a).
Every row of a sample carries that sample's render (avatar_png), reconstruction and inversion
losses; `latent` is the row's own W+ code, flattened. `kept` is the quality gate:
loss_total <= max_loss (NaN never passes).

`produce_shard` takes one shard's rendered rows and writes the shard's files atomically, pairs
last (the layout is in actors.produce_stage, which runs this in a Ray actor pool).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from swiftavatar import shards
from swiftavatar.engines.schema import EngineSchema
from swiftavatar.production.augment import AugmentConfig
from swiftavatar.production.inversion_config import InversionConfig
from swiftavatar.production.pairs import DROPPED_DIR, PAIR_DIR

LOSS_KEYS = ("total", "lpips", "mse", "latent")


@dataclass(frozen=True)
class InversionJob:
    """What every inversion actor needs; picklable. w_mean / w_tilde are (1, D) as lists."""

    g_avatar: str
    g_real: str
    out: str
    schema: dict[str, Any]  # EngineSchema.to_dict()
    w_mean: list[list[float]]
    w_tilde: list[list[float]]
    inversion: InversionConfig = field(default_factory=InversionConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    init_policy: str = "paper"  # swiftavatar.production.mean_latent.choose_init
    batch_size: int = 8  # images inverted together
    max_loss: float | None = None  # quality gate on loss_total; None keeps every pair
    seed: int = 0  # augmentation noise seed (with the sample id)
    gpus: float = 0.0  # the actor's GPU share: > 0 asks for CUDA
    lpips_net: str = "vgg"
    lpips_backbone: str | None = None
    lpips_allow_random: bool = False
    fail_once_marker: str | None = None  # test only: see ProduceConfig (the actor uses it)


def pick_device(gpus: float) -> str:
    """'cuda' when the actor holds a GPU share and CUDA works, else 'cpu' (warns if asked)."""
    import torch

    if gpus > 0:
        if torch.cuda.is_available():
            return "cuda"
        warnings.warn(f"gpus_per_worker={gpus:g} but CUDA is not available on this worker: "
                      f"inverting on the CPU", RuntimeWarning, stacklevel=2)
    return "cpu"


def pairs_schema(schema: EngineSchema, latent_size: int) -> pa.Schema:
    """Arrow schema of a pairs (or dropped) shard; latent is a fixed-size float32 list."""
    vec = ([pa.field(f"c.{p.name}", pa.float32()) for p in schema.continuous]
           + [pa.field(f"d.{p.name}", pa.int32()) for p in schema.discrete])
    fields = [pa.field("sample_id", pa.int64()), pa.field("seed", pa.int64()),
              pa.field("engine", pa.string()), pa.field("schema_version", pa.string()),
              pa.field("schema_fingerprint", pa.string()), *vec,
              pa.field("aug_index", pa.int32()), pa.field("avatar_png", pa.binary()),
              pa.field("reconstruction_png", pa.binary()),
              pa.field("realistic_png", pa.binary()),
              pa.field("avatar_mask_png", pa.binary()),
              pa.field("realistic_mask_png", pa.binary()),
              pa.field("latent", pa.list_(pa.float32(), latent_size)),
              *[pa.field(f"loss_{k}", pa.float32()) for k in LOSS_KEYS],
              pa.field("kept", pa.bool_())]
    return pa.schema(fields, metadata={shards.SCHEMA_META_KEY: schema.to_json().encode()})


def to_uint8(images) -> np.ndarray:
    """(N, 3, H, W) torch in [-1, 1] -> (N, H, W, 3) uint8."""
    import torch

    x = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


class PairMaker:
    """Rendered rows -> pair rows (module docstring), and one shard of them written. Loads
    G_avatar, G_real and the LPIPS metric once; no Ray (actors.inversion_worker wraps it)."""

    def __init__(self, job: InversionJob) -> None:
        import torch

        from swiftavatar.metrics import build_lpips
        from swiftavatar.training.checkpoint import load_generator

        self.job = job
        self.device = pick_device(job.gpus)
        self.schema = EngineSchema.from_dict(job.schema)
        self.g_avatar, self.meta_avatar = load_generator(job.g_avatar, device=self.device)
        self.g_real, self.meta_real = load_generator(job.g_real, device=self.device)
        check_compatible(self.g_avatar, self.g_real, job.g_avatar, job.g_real)
        self.lpips = (build_lpips(job.lpips_net, job.lpips_backbone,
                                  allow_random=job.lpips_allow_random, device=self.device)
                      if job.inversion.lambda_p > 0 else None)     # lambda_p 0: no LPIPS term
        self.w_mean = torch.tensor(job.w_mean, dtype=torch.float32, device=self.device)  # (1, D)
        self.w_tilde = torch.tensor(job.w_tilde, dtype=torch.float32, device=self.device)
        D = self.g_avatar.config.style_dim
        assert self.w_mean.shape == (1, D) and self.w_tilde.shape == (1, D), (
            self.w_mean.shape, self.w_tilde.shape)
        self.latent_size = self.g_avatar.n_latent * D
        self.out_schema = pairs_schema(self.schema, self.latent_size)
        self.fs, self.base = shards.resolve(job.out)

    # ---- rows -> rows -------------------------------------------------------------------
    def invert_rows(self, batch: pa.Table) -> pa.Table:
        """Rendered rows (n) -> pair rows (n * (1 + A)), sample by sample in input order."""
        if batch.num_rows == 0:
            return self.out_schema.empty_table()
        parts = [self._invert_slice(batch.slice(s, self.job.batch_size))
                 for s in range(0, batch.num_rows, self.job.batch_size)]
        return pa.concat_tables(parts)

    def _invert_slice(self, rows: pa.Table) -> pa.Table:
        import torch

        from swiftavatar.production.augment import augment
        from swiftavatar.production.inversion import invert
        from swiftavatar.production.mean_latent import choose_init
        from swiftavatar.production.realistic import generate_real

        job, G = self.job, self.g_avatar
        n, A = rows.num_rows, job.augment.num_augmentations
        R, D = G.n_latent, G.config.style_dim
        avatar_png = rows.column("image_png").to_pylist()
        y = np.stack([shards.decode_png(p) for p in avatar_png])            # (n, H, W, 3) uint8
        assert y.ndim == 4 and y.shape[-1] == 3, y.shape
        targets = torch.from_numpy(y).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        mask_png = (rows.column("mask_png").to_pylist() if "mask_png" in rows.column_names
                    else [None] * n)
        masks = None
        if all(p is not None for p in mask_png):                            # the engine's masks
            masks = torch.from_numpy(np.stack([shards.decode_png(p) for p in mask_png]))
        if masks is None and (job.init_policy == "masks" or job.inversion.lambda_s > 0):
            raise ValueError(f"init_policy {job.init_policy!r} / lambda_s "
                             f"{job.inversion.lambda_s} need engine masks, and these renders "
                             f"have none")
        init, _ = choose_init(G, n, self.w_mean, self.w_tilde, masks, policy=job.init_policy)
        res = invert(G, targets.to(self.device), job.inversion, w_init=init, lpips=self.lpips,
                     device=self.device, masks=masks, g_real=self.g_real)
        assert res.latents.shape == (n, R, D), res.latents.shape
        ids = rows.column("sample_id").to_numpy()
        codes = []
        for i in range(n):  # Eq. 7 per sample: the noise depends on (seed, sample id) only
            aug = augment(G, res.latents[i:i + 1], job.augment,
                          seed=augment_seed(job.seed, int(ids[i])), device=self.device)
            codes.append(torch.cat([res.latents[i:i + 1], aug.latents]))   # (1 + A, R, D)
        all_codes = torch.cat(codes)                                        # (n(1+A), R, D)
        real, real_masks = generate_real(self.g_real, all_codes, batch_size=64,
                                         device=self.device, with_masks=True)
        real = to_uint8(real)                                               # (n(1+A), S, S, 3)
        recon = to_uint8(res.reconstructions)                               # (n, S, S, 3)
        recon_png = [shards.encode_png(r) for r in recon]
        # the avatar's regions: the engine's mask where it renders one, else G_avatar's own
        # segmentation of the reconstruction
        avatar_mask_png = (mask_png if masks is not None else
                           [shards.encode_png(m) for m in res.masks.cpu().numpy()])
        losses = {k: res.losses[k].float().cpu().numpy() for k in LOSS_KEYS}  # (n,) each
        kept = (np.ones(n, bool) if job.max_loss is None
                else losses["total"] <= job.max_loss)                       # NaN -> False
        rep = np.repeat(np.arange(n), 1 + A)                                # row -> sample
        cols: dict[str, Any] = {}
        for name in ("sample_id", "seed", "engine", "schema_version", "schema_fingerprint"):
            cols[name] = rows.column(name).take(pa.array(rep))
        for f in self.out_schema:
            if f.name.startswith(("c.", "d.")):
                cols[f.name] = rows.column(f.name).take(pa.array(rep))
        cols["aug_index"] = pa.array(np.tile(np.arange(1 + A, dtype=np.int32), n))
        cols["avatar_png"] = pa.array([avatar_png[i] for i in rep], pa.binary())
        cols["reconstruction_png"] = pa.array([recon_png[i] for i in rep], pa.binary())
        cols["realistic_png"] = pa.array([shards.encode_png(x) for x in real], pa.binary())
        cols["avatar_mask_png"] = pa.array([avatar_mask_png[i] for i in rep], pa.binary())
        cols["realistic_mask_png"] = pa.array(
            [shards.encode_png(m) for m in real_masks.cpu().numpy()], pa.binary())
        flat = all_codes.detach().float().cpu().numpy().reshape(-1)         # (n(1+A) R D,)
        cols["latent"] = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()),
                                                           self.latent_size)
        for k in LOSS_KEYS:
            cols[f"loss_{k}"] = pa.array(losses[k][rep], pa.float32())
        cols["kept"] = pa.array(kept[rep], pa.bool_())
        return pa.table(cols, schema=self.out_schema)

    # ---- one shard, written ----------------------------------------------------------------
    def produce_shard(self, shard: int, rendered: pa.Table, errors: pa.Table | None
                      ) -> dict[str, Any]:
        """Invert one shard's rendered rows and write errors/, dropped/, then pairs/ (last:
        marks the shard finished). A finished shard is skipped, never rewritten."""
        t0 = time.perf_counter()
        name = shards.shard_name(shard)
        path = shards.join(self.base, PAIR_DIR, name)
        if shards.is_file(self.fs, path):  # finished by an earlier or concurrent attempt
            return {"shard": shard, "samples": 0, "rows": 0, "dropped": 0, "errors": 0,
                    "status": "skipped", "path": path, "seconds": time.perf_counter() - t0,
                    "error": None}
        rows = self.invert_rows(rendered)
        kept = rows.column("kept")
        good, bad = rows.filter(kept), rows.filter(pc.invert(kept))
        for sub, table in ((shards.ERROR_DIR, errors), (DROPPED_DIR, bad)):
            p = shards.join(self.base, sub, name)
            if table is not None and table.num_rows:
                shards.write_table_atomic(self.fs, p, table)
            elif shards.is_file(self.fs, p):  # left by an attempt that stopped before pairs/
                self.fs.delete_file(p)
        shards.write_table_atomic(self.fs, path, good)
        n_dropped = bad.num_rows // (1 + self.job.augment.num_augmentations)
        return {"shard": shard, "samples": rendered.num_rows, "rows": good.num_rows,
                "dropped": n_dropped, "errors": 0 if errors is None else errors.num_rows,
                "status": "written", "path": path, "seconds": time.perf_counter() - t0,
                "error": None}


def augment_seed(seed: int, sample_id: int) -> int:
    """Eq. 7 noise seed of one sample: the same wherever and with whatever batch it runs."""
    return (int(seed) * 1_000_003 + int(sample_id)) % (2 ** 63)


def check_compatible(g_avatar, g_real, path_a: str, path_r: str) -> None:
    """G_real must read G_avatar's W+ codes (Eq. 6): same latent layout."""
    a = (g_avatar.n_latent, g_avatar.config.style_dim)
    r = (g_real.n_latent, g_real.config.style_dim)
    if a != r:
        raise ValueError(f"G_avatar {path_a} has W+ (n_latent, D) = {a} but G_real {path_r} "
                         f"has {r}: G_real must be adapted from the same generator")


__all__ = ["InversionJob", "LOSS_KEYS", "PairMaker", "augment_seed", "check_compatible",
           "pairs_schema", "pick_device", "to_uint8"]
