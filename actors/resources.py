"""The one check of what a stage asks Ray for against what the cluster has. A request no node
can place would wait forever (Ray Data and Ray Train queue it silently), so every stage asks
here first and gets a one-line ValueError naming what to lower."""
from __future__ import annotations

from typing import Any

_EPS = 1e-9


def cluster_capacity() -> tuple[float, float]:
    """(CPUs, GPUs) of the running Ray cluster."""
    import ray

    have = ray.cluster_resources()
    return float(have.get("CPU", 0.0)), float(have.get("GPU", 0.0))


def check_resources(cpus: float, gpus: float = 0.0, *, what: str, fix_cpus: str,
                    fix_gpus: str) -> None:
    """Raise ValueError when `what` needs more CPUs or GPUs than the cluster has."""
    have_cpus, have_gpus = cluster_capacity()
    if cpus > have_cpus + _EPS:
        raise ValueError(f"{what} need {cpus:g} CPUs, but the Ray cluster has {have_cpus:g}: "
                         f"{fix_cpus}")
    if gpus > have_gpus + _EPS:
        raise ValueError(f"{what} need {gpus:g} GPUs, but the Ray cluster has {have_gpus:g}: "
                         f"{fix_gpus}")


def check_actor_resources(cfg: Any) -> None:
    """An actor pool (render, produce): one actor of `cpus_per_worker` CPUs and
    `gpus_per_worker` GPUs must fit, or no actor could start."""
    check_resources(
        cfg.cpus_per_worker, cfg.gpus_per_worker,
        what=f"actors of cpus_per_worker {cfg.cpus_per_worker:g}, gpus_per_worker "
             f"{cfg.gpus_per_worker:g}",
        fix_cpus="no actor could start, lower --cpus-per-worker",
        fix_gpus="no actor could start, use --gpus-per-worker 0 on CPU-only clusters")


def check_training_resources(cfg: Any) -> None:
    """A Ray Train run (generator or estimator): `num_workers` workers of `cpus_per_worker`
    CPUs (and `gpus_per_worker` GPUs with `use_gpu`) plus `data_cpus` for Ray Data."""
    need_gpus = cfg.num_workers * cfg.gpus_per_worker if cfg.use_gpu else 0.0
    check_resources(
        cfg.num_workers * cfg.cpus_per_worker + cfg.data_cpus, need_gpus,
        what=f"{cfg.num_workers} workers x {cfg.cpus_per_worker:g} CPUs + {cfg.data_cpus:g} "
             f"for data reading",
        fix_cpus="lower --workers or --cpus-per-worker",
        fix_gpus="train on CPUs (--gpus-per-worker 0)")


__all__ = ["check_actor_resources", "check_resources", "check_training_resources",
           "cluster_capacity"]
