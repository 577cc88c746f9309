"""Semantic augmentation again, from a paired dataset's stored latents (paper Eq. 7).

Every row of a paired dataset stores its own W+ code (`latent`); the aug_index 0 row's code is
the inverted one, w*. A trial that only changes lambda_aug therefore needs neither the engine
nor the inversion: Eq. 7 is applied to w* with the new lambdas (the same per-sample noise seed
as the production stage, `augment_seed(seed, sample_id)`) and G_real draws the realistic faces
(Eq. 6). aug_index 0 rows are copied unchanged. With the dataset's own lambdas the output
repeats the stored augmented latents exactly.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from swiftavatar import shards
from swiftavatar.production.pairs import PAIR_DIR

MANIFEST = "reaugment.json"
CARD_FILE = "dataset_card.json"


def source_settings(source: str) -> dict[str, Any]:
    """What production used (g_avatar, g_real, seed, augmentations, lambda_aug, engine), from
    the source's dataset card."""
    card = Path(source) / CARD_FILE
    if not card.is_file():
        raise FileNotFoundError(f"{source} has no {CARD_FILE}: re-augmentation needs the "
                                f"generators and seed production used (a `swiftavatar produce` "
                                f"output directory)")
    from swiftavatar.production.config import ProduceConfig

    cfg = ProduceConfig.from_dict(json.loads(card.read_text())["config"])
    return {"g_avatar": cfg.g_avatar, "g_real": cfg.g_real, "seed": cfg.seed,
            "augmentations": cfg.augment.num_augmentations,
            "lambda_aug": dict(cfg.augment.lambdas), "engine": cfg.engine}


def reaugment_pairs(source: str, dest: str, lambdas: Mapping[str, float], *,
                    g_avatar: str | None = None, g_real: str | None = None,
                    seed: int | None = None, augmentations: int | None = None,
                    batch_size: int = 64, device: str = "cpu") -> dict[str, Any]:
    """Write DEST/pairs/part-*.parquet: the source's aug_index 0 rows plus `augmentations`
    new rows per sample made with lambda_aug = source lambdas updated by `lambdas`.
    Generators, seed and augmentations default to the source card's. DEST appears whole (built
    under a temporary name, then renamed). Returns the manifest also written to DEST."""
    import torch

    from swiftavatar.production.augment import AugmentConfig, augment
    from swiftavatar.production.realistic import generate_real
    from swiftavatar.production.rows import augment_seed, to_uint8
    from swiftavatar.training.checkpoint import load_generator

    t0 = time.perf_counter()
    known = source_settings(source) if None in (g_avatar, g_real, seed, augmentations) else {}
    g_avatar = g_avatar or known["g_avatar"]
    g_real = g_real or known["g_real"]
    seed = int(known["seed"] if seed is None else seed)
    A = int(known["augmentations"] if augmentations is None else augmentations)
    merged = {**(known.get("lambda_aug") or {}), **{k: float(v) for k, v in lambdas.items()}}
    config = AugmentConfig(A, merged)
    G_a, _ = load_generator(g_avatar, device=device)
    G_r, _ = load_generator(g_real, device=device)
    R, D = G_a.n_latent, G_a.config.style_dim
    fs, base = shards.resolve(source)
    found = shards.list_shards(fs, shards.join(base, PAIR_DIR))
    if not found:
        raise FileNotFoundError(f"{source} holds no finished pair shards ({PAIR_DIR}/)")
    final = Path(dest)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / PAIR_DIR).mkdir(parents=True)
    rows = samples = 0
    for k, path in sorted(found.items()):
        table = pq.read_table(path, filesystem=fs)
        clean = table.filter(pc.equal(table.column("aug_index"), 0))
        n = clean.num_rows
        if n == 0:
            continue
        w = np.array(clean.column("latent").combine_chunks().flatten(), np.float32)  # copy
        w_star = torch.from_numpy(w.reshape(n, R, D))                      # (n, R, D)
        ids = clean.column("sample_id").to_numpy()
        codes = torch.cat([augment(G_a, w_star[i:i + 1], config, device=device,
                                   seed=augment_seed(seed, int(ids[i]))).latents
                           for i in range(n)])                              # (n A, R, D)
        assert codes.shape == (n * A, R, D), codes.shape
        real, real_masks = generate_real(G_r, codes, batch_size=batch_size, device=device,
                                         with_masks=True)
        real = to_uint8(real)
        rep = np.concatenate([[i] + [i] * A for i in range(n)])             # row -> sample
        aug_idx = np.tile(np.arange(1 + A, dtype=np.int32), n)
        new_row = np.flatnonzero(aug_idx > 0)                               # (n A,)
        out = clean.take(pa.array(rep))
        png = np.asarray(out.column("realistic_png").to_pylist(), dtype=object)
        png[new_row] = [shards.encode_png(x) for x in real]
        lat = np.repeat(w_star.numpy().reshape(n, R * D), 1 + A, axis=0)    # (n (1+A), R D)
        lat[new_row] = codes.detach().float().cpu().numpy().reshape(n * A, R * D)
        cols = {name: out.column(name) for name in out.column_names}
        cols["aug_index"] = pa.array(aug_idx, pa.int32())
        cols["realistic_png"] = pa.array(list(png), pa.binary())
        if "realistic_mask_png" in cols:                  # datasets with G_real's masks
            mpng = np.asarray(out.column("realistic_mask_png").to_pylist(), dtype=object)
            mpng[new_row] = [shards.encode_png(m) for m in real_masks.cpu().numpy()]
            cols["realistic_mask_png"] = pa.array(list(mpng), pa.binary())
        cols["latent"] = pa.FixedSizeListArray.from_arrays(
            pa.array(lat.reshape(-1), pa.float32()), R * D)
        pq.write_table(pa.table(cols, schema=table.schema),
                       tmp / PAIR_DIR / shards.shard_name(k))
        rows += out.num_rows
        samples += n
    manifest = {"source": str(source), "lambda_aug": dict(sorted(merged.items())),
                "augmentations": A, "seed": seed, "g_avatar": g_avatar, "g_real": g_real,
                "samples": samples, "rows": rows,
                "wall_s": round(time.perf_counter() - t0, 3)}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if final.exists():                   # finished meanwhile by another trial: keep that one
        shutil.rmtree(tmp, ignore_errors=True)
        return json.loads((final / MANIFEST).read_text())
    os.replace(tmp, final)
    return manifest


__all__ = ["MANIFEST", "reaugment_pairs", "source_settings"]
