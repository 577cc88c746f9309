"""Small real datasets and checkpoints the tests (and benchmarks/bench_tune.py) build on, each
written by the project's own writers: toon renders by the rendering stage's code, a paired
dataset in the produce stage's layout, tiny 32-px generators by the checkpoint writer.
Imported by test modules and by driver scripts run as subprocesses (tests/ is on their path).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

NO_BROKEN = {"discrete_weights": {"shape": {"broken": 0.0}}}   # target engine: no failing shape


def write_toon_renders(out: Path, count: int, *, seed: int = 3, size: int = 32,
                       shard_size: int = 8) -> Path:
    """A rendered toon dataset (the render stage's layout), written with its code, no Ray."""
    from actors.render_stage import RenderConfig, plan_render, prepare_output
    from actors.renderer import EngineRenderer, RenderJob

    plan = plan_render(RenderConfig(engine="toon", out=str(out), count=count, seed=seed,
                                    size=size, shard_size=shard_size, progress=False))
    prepare_output(plan)
    renderer = EngineRenderer(RenderJob(
        engine=plan.spec, out=str(out), seed=seed, size=size, render_batch=shard_size,
        schema_fingerprint=plan.schema.fingerprint, prior=plan.manifest["dataset"]["prior"]))
    for k in range(plan.num_shards):
        renderer.render_shard(k, *plan.shard_range(k))
    return Path(out)


def write_toon_pairs(out: Path, n: int = 16, shard_size: int = 8, aug: int = 2, *,
                     seed: int = 0, size: int = 32) -> Path:
    """A paired dataset in the produce stage's layout from toon renders: row a > 0 of a sample
    is the render with a colour cast (a stand-in for G_real's face; its mask is the engine's);
    vectors repeat per row."""
    import pyarrow as pa

    from swiftavatar.production.rows import LOSS_KEYS, pairs_schema
    from swiftavatar import shards
    from swiftavatar.engines.registry import get_engine

    engine = get_engine("toon")
    schema = engine.schema
    vec = schema.sample(seed, np.arange(n))
    rendered = engine.render(vec, size)
    imgs, masks = rendered.images, rendered.masks                         # (n, S, S, 3), (n, S, S)
    rng = np.random.default_rng(seed)
    fs, base = shards.resolve(str(out))
    for k in range(0, n, shard_size):
        ids = np.repeat(np.arange(k, min(n, k + shard_size)), aug + 1)
        a_idx = np.tile(np.arange(aug + 1), len(ids) // (aug + 1)).astype(np.int32)
        real = [np.clip(imgs[i].astype(np.int16) + (rng.integers(-25, 26, 3) if a else 0),
                        0, 255).astype(np.uint8) for i, a in zip(ids, a_idx)]
        m = len(ids)
        cols = {"sample_id": ids, "seed": np.full(m, seed, np.int64),
                "engine": [schema.engine] * m, "schema_version": [schema.version] * m,
                "schema_fingerprint": [schema.fingerprint] * m,
                **vec.select(ids).to_arrow_columns(), "aug_index": a_idx,
                "avatar_png": [shards.encode_png(imgs[i]) for i in ids],
                "reconstruction_png": [shards.encode_png(imgs[i]) for i in ids],
                "realistic_png": [shards.encode_png(r) for r in real],
                "avatar_mask_png": [shards.encode_png(masks[i]) for i in ids],
                "realistic_mask_png": [shards.encode_png(masks[i]) for i in ids],
                "latent": [np.zeros(4, np.float32)] * m,
                **{f"loss_{key}": np.zeros(m, np.float32) for key in LOSS_KEYS},
                "kept": [True] * m}
        name = shards.shard_name(k // shard_size)
        shards.write_table_atomic(fs, shards.join(base, "pairs", name),
                                  pa.table(cols, schema=pairs_schema(schema, 4)))
    return Path(out)


def tiny_generator_configs():
    """(GeneratorConfig, DiscriminatorConfig) of the tiny 32-px generators."""
    from swiftavatar.models import DiscriminatorConfig, GeneratorConfig

    return (GeneratorConfig(size=32, grid=8, min_feat_size=4, style_dim=32, local_channels=16,
                            local_layers=5, base_layers=2, depth_layers=3, feature_channels=16,
                            render_channels=(32, 16, 16)),
            DiscriminatorConfig(size=32, channels=(16, 32, 32, 32)))


def write_tiny_generators(directory: str | Path) -> tuple[str, str]:
    """(G_avatar run dir, G_real run dir) under `directory`/avatar and /real: tiny 32-px
    generators (random weights) written with the real checkpoint writer."""
    import torch

    from swiftavatar.models import Discriminator, SemanticGenerator
    from swiftavatar.training.checkpoint import make_payload, save_checkpoint

    gcfg, dcfg = tiny_generator_configs()
    out = []
    for seed, domain, step in ((0, "avatar", 20), (1, "real", 30)):
        torch.manual_seed(seed)
        g, d, g_ema = SemanticGenerator(gcfg), Discriminator(dcfg), SemanticGenerator(gcfg)
        g_ema.load_state_dict(g.state_dict())
        payload = make_payload(
            g=g, d=d, g_ema=g_ema, g_opt=torch.optim.Adam(g.parameters()),
            d_opt=torch.optim.Adam(d.parameters()), step=step, images_seen=step * 4,
            mean_path_length=0.0, run_config={"domain": domain},
            w_mean=g_ema.mean_latent(256, generator=torch.Generator().manual_seed(0)))
        out.append(str(save_checkpoint(Path(directory) / domain, payload).parent))
    return out[0], out[1]
