"""The dataset stages in front of a trial's estimator training, with a cache shared by trials.

A trial runs only the stages its parameters touch (tune.space.stages_for):
* estimator.* only: trains on the sweep's paired dataset as it is;
* augment.*: re-augments that dataset's stored latents (tune.reaugment) in a Ray task;
* inversion.*: produces a new (small) paired dataset (actors.produce_stage);
* finetune.*: finetunes G_avatar first (actors.train_generator), then produces with it.
Each stage output lives in CACHE/<stage>-<key>, the key hashing everything that defines it
(the source dataset, the stage config with the trial's values), so trials that agree on those
values share one output and a restored sweep finds it again. A file lock makes a second trial
wait for the first one building the same output (CACHE must be on one shared filesystem when
trials run on several nodes).
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from tune.space import AUGMENT, FINETUNE, PRODUCE, stages_for
from tune.spec import SweepSpec


def _say(text: str) -> None:
    sys.stderr.write(f"[sweep] {text}\n")
    sys.stderr.flush()


def cache_key(stage: str, what: Mapping[str, Any]) -> str:
    blob = json.dumps({"stage": stage, **what}, sort_keys=True, default=str).encode()
    return f"{stage}-{hashlib.sha256(blob).hexdigest()[:12]}"


@contextmanager
def cache_lock(cache: Path, key: str) -> Iterator[None]:
    """Hold CACHE/.<key>.lock (an exclusive file lock) for the block."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{key}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _source_fingerprint(pairs: str) -> str:
    """The source dataset's identity: its production fingerprint, else its shard files."""
    p = Path(pairs) / "produce_config.json"
    if p.is_file():
        return json.loads(p.read_text()).get("config_fingerprint", "")
    files = sorted((Path(pairs) / "pairs").glob("part-*.parquet"))
    return hashlib.sha256("|".join(f"{f.name}:{f.stat().st_size}" for f in files)
                          .encode()).hexdigest()[:16]


def _values(values: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    return {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(namespace + ".")}


def finetune_config(spec: SweepSpec, values: Mapping[str, Any], cache: Path):
    """GanTrainConfig of the G_avatar finetune a finetune.* trial needs (init: the source
    dataset's G_real; data: the sweep's engine renders)."""
    from swiftavatar.training.gan_config import GanTrainConfig
    from tune.reaugment import source_settings

    src = source_settings(spec.pairs)
    d = {"domain": "avatar", "init": src["g_real"], "data": os.path.abspath(spec.renders or ""),
         "progress": False, **spec.finetune, **_values(values, "finetune"), "out": "-"}
    cfg = GanTrainConfig.from_dict(d)
    key = cache_key(FINETUNE, {k: v for k, v in cfg.to_dict().items() if k != "out"})
    return dataclasses.replace(cfg, out=str(cache / key)).validate()


def produce_config(spec: SweepSpec, values: Mapping[str, Any], cache: Path,
                   g_avatar: str | None = None):
    """ProduceConfig of the paired dataset an inversion.* / finetune.* trial needs: the source
    dataset's production config, the file's `produce:` fields, then the trial's values."""
    from swiftavatar.production.config import ProduceConfig
    from tune.trial import engine_spec_of

    card = json.loads((Path(spec.pairs) / "dataset_card.json").read_text())["config"]
    # flat `produce:` and inversion.* names (ProduceConfig.FLAT_FIELDS) win over the card's
    d = {**card, "overwrite": False, "max_shards": None, "progress": False,
         "fail_once_marker": None, **spec.produce, **_values(values, "inversion")}
    if g_avatar:
        d["g_avatar"] = g_avatar
    d["engine"] = engine_spec_of(spec.pairs, str(d.get("engine", "")), spec.engine)
    d["out"] = "-"
    cfg = ProduceConfig.from_dict(d)
    aug = _values(values, "augment")
    if aug:
        cfg = dataclasses.replace(cfg, augment=dataclasses.replace(
            cfg.augment, lambdas={**cfg.augment.lambdas, **aug}))
    run_only = ("out", "workers", "min_workers", "cpus_per_worker", "gpus_per_worker",
                "batch_size", "render_workers", "render_cpus", "render_batch", "progress")
    key = cache_key(PRODUCE, {k: v for k, v in dataclasses.asdict(cfg).items()
                              if k not in run_only})
    return dataclasses.replace(cfg, out=str(cache / key))


def augment_output(spec: SweepSpec, values: Mapping[str, Any], cache: Path) -> tuple[Path, dict]:
    lambdas = _values(values, "augment")
    key = cache_key(AUGMENT, {"source": os.path.abspath(spec.pairs),
                              "source_fingerprint": _source_fingerprint(spec.pairs),
                              "lambda_aug": lambdas})
    return cache / key, lambdas


def _reaugment_task(source: str, dest: str, lambdas: dict[str, float]) -> dict[str, Any]:
    from tune.reaugment import reaugment_pairs

    return reaugment_pairs(source, dest, lambdas)


def prepare_data(spec: SweepSpec, values: Mapping[str, Any], cache: str | Path
                 ) -> tuple[str, dict[str, Any]]:
    """Run (or find in the cache) the dataset stages `values` need. Returns the paired dataset
    the trial trains on and {"stages", "data", "reused"}."""
    import ray

    cache = Path(cache)
    stages = stages_for(list(values))
    pairs = os.path.abspath(spec.pairs)
    info: dict[str, Any] = {"stages": list(stages), "reused": []}
    g_avatar = None
    if FINETUNE in stages:
        from actors.train_generator import run_training
        from swiftavatar.training.checkpoint import list_checkpoints

        gan = finetune_config(spec, values, cache)
        with cache_lock(cache, Path(gan.out).name):
            found = list_checkpoints(gan.out) if Path(gan.out).exists() else {}
            if found and max(found) >= gan.total_steps:
                info["reused"].append(FINETUNE)
            else:
                _say(f"finetune G_avatar -> {gan.out}")
                run_training(gan)
        g_avatar = gan.out
    if PRODUCE in stages:
        from actors.produce_stage import run_produce_stage

        prod = produce_config(spec, values, cache, g_avatar)
        card = Path(prod.out) / "dataset_card.json"
        with cache_lock(cache, Path(prod.out).name):
            if card.is_file() and json.loads(card.read_text()).get("complete"):
                info["reused"].append(PRODUCE)
            else:
                _say(f"produce {prod.count} pairs -> {prod.out}")
                run_produce_stage(prod)
        pairs = prod.out
    elif AUGMENT in stages:
        dest, lambdas = augment_output(spec, values, cache)
        with cache_lock(cache, dest.name):
            if dest.is_dir():
                info["reused"].append(AUGMENT)
            else:
                _say(f"re-augment {spec.pairs} with {lambdas} -> {dest}")
                t0 = time.perf_counter()
                task = ray.remote(num_cpus=spec.resources.stage_cpus)(_reaugment_task)
                ray.get(task.remote(pairs, str(dest), lambdas))
                info["augment_s"] = round(time.perf_counter() - t0, 2)
        pairs = str(dest)
    info["data"] = pairs
    return pairs, info


__all__ = ["augment_output", "cache_key", "cache_lock", "finetune_config", "prepare_data",
           "produce_config"]
