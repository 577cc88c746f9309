"""Planning a paired-data production run, Ray-free: the engine's schema and prior, both
generators, the LPIPS metric (built to fail early and name its backbone), the start codes
w_mean and w~_mean, and the dataset identity (the manifest a re-run must match)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from swiftavatar import __version__
from swiftavatar.engines.registry import EngineSpec
from swiftavatar.engines.schema import EngineSchema, Prior
from swiftavatar.production.config import ProduceConfig


@dataclass
class ProducePlan:
    config: ProduceConfig
    spec: EngineSpec
    schema: EngineSchema
    size: int
    manifest: dict[str, Any]
    job: Any  # swiftavatar.production.rows.InversionJob
    prior: Prior  # the sampling prior, resolved (the renderers' job is built from the plan)
    lpips_info: dict[str, Any]
    w_init: dict[str, Any]

    @property
    def num_shards(self) -> int:
        return -(-self.config.count // self.config.shard_size)

    def shard_range(self, k: int) -> tuple[int, int]:
        s = self.config.shard_size
        return k * s, min(self.config.count, (k + 1) * s)


def plan_produce(config: ProduceConfig) -> ProducePlan:
    """Validate, read the engine schema and both generators, build the LPIPS metric and the
    start code (w~_mean from the checkpoint, its cache, or computed once). No Ray."""
    import torch

    from swiftavatar.metrics import build_lpips
    from swiftavatar.production.mean_cache import w_tilde_entry
    from swiftavatar.production.rows import InversionJob, check_compatible
    from swiftavatar.training.checkpoint import checkpoint_spec, load_generator

    config.validate()
    spec = EngineSpec.parse(config.engine, config.engine_options)
    with spec.build() as engine:
        schema = engine.schema
        identity_options = {k: v for k, v in spec.options.items() if k not in engine.run_options}
        if config.prior == "suggested":
            prior = engine.suggested_prior() or Prior()
        else:
            prior = Prior.from_dict(config.prior) if config.prior is not None else Prior()
    prior.check(schema)
    lambda_s = config.inversion.lambda_s
    if lambda_s and not schema.supports_masks:
        raise ValueError(f"lambda_s {lambda_s} needs an engine that renders masks; "
                         f"{spec.name!r} does not: set lambda_s to 0")
    inversion = config.resolved_inversion(schema.supports_masks)
    n_mean = inversion.n_mean
    g_a, meta_a = load_generator(config.g_avatar)
    g_r, meta_r = load_generator(config.g_real)
    check_compatible(g_a, g_r, config.g_avatar, config.g_real)
    size = config.size or g_a.config.size
    lpips = build_lpips(config.lpips_net, config.lpips_backbone,
                        allow_random=config.lpips_allow_random)
    w_mean = meta_a.get("w_mean")
    if w_mean is None:  # official files carry none: estimate it as the paper does
        w_mean = g_a.mean_latent(n_mean, generator=torch.Generator().manual_seed(config.seed))
    w_mean = w_mean.detach().float().reshape(1, -1)                         # (1, D)
    if config.init == "w_tilde":
        mod, source = w_tilde_entry(g_a, meta_a, n=n_mean, seed=config.seed)
        w_tilde = mod["w"].detach().float().reshape(1, -1)                  # (1, D)
        w_init = {"kind": config.init, "n_mean": n_mean, "rule": mod["rule"],
                  "threshold": mod["threshold"], "kept": mod["kept"]}
    else:
        w_tilde, source = w_mean, "checkpoint"
        w_init = {"kind": config.init, "n_mean": n_mean, "rule": "checkpoint w_mean",
                  "threshold": None, "kept": None}
    w_init.update(distance_to_w_mean=float((w_tilde - w_mean).norm()),
                  sha256=hashlib.sha256(w_tilde.numpy().tobytes()).hexdigest()[:16],
                  source=source)
    out = config.out if "://" in config.out else os.path.abspath(config.out)
    generators = {"avatar": gen_info(meta_a), "real": gen_info(meta_r)}
    dataset = {
        "engine": spec.name, "engine_options": identity_options, "count": config.count,
        "seed": config.seed, "prior": prior.to_dict(), "size": size,
        "shard_size": config.shard_size, "schema_fingerprint": schema.fingerprint,
        "generators": {k: {"path": v["path"], "step": v["step"]} for k, v in generators.items()},
        "inversion": dataclasses.asdict(inversion), "init": config.init,
        "augment": augment_identity(config),
        "max_loss": config.max_loss,
        "lpips": {"net": lpips.info["net"], "backbone": lpips.info["backbone"]},
    }
    blob = json.dumps(dataset, sort_keys=True, default=str).encode()
    manifest = {"dataset": dataset, "config_fingerprint": hashlib.sha256(blob).hexdigest()[:16],
                "engine_schema": schema.to_dict(), "created_by": f"swiftavatar {__version__}"}
    job = InversionJob(
        g_avatar=checkpoint_spec(config.g_avatar), g_real=checkpoint_spec(config.g_real),
        out=out, schema=schema.to_dict(), w_mean=w_mean.tolist(), w_tilde=w_tilde.tolist(),
        inversion=inversion, augment=config.augment,
        batch_size=config.batch_size, max_loss=config.max_loss, seed=config.seed,
        gpus=config.gpus_per_worker, lpips_net=config.lpips_net,
        lpips_backbone=config.lpips_backbone, lpips_allow_random=config.lpips_allow_random,
        fail_once_marker=config.fail_once_marker)
    return ProducePlan(config, spec, schema, size, manifest, job, prior, dict(lpips.info),
                       w_init)


def augment_identity(config: ProduceConfig) -> dict[str, Any]:
    """Eq. 7's settings in the dataset identity; `codes` only when not the default "both", so
    a dataset made before it could be set resumes."""
    a = config.augment
    out: dict[str, Any] = {"num_augmentations": a.num_augmentations,
                           "lambdas": dict(sorted(a.lambdas.items()))}
    if a.codes != "both":
        out["codes"] = a.codes
    return out


def gen_info(meta: dict[str, Any]) -> dict[str, Any]:
    return {"path": meta.get("path"), "step": meta.get("step"), "domain": meta.get("domain"),
            "generator_config": meta.get("generator_config")}


__all__ = ["ProducePlan", "augment_identity", "gen_info", "plan_produce"]
