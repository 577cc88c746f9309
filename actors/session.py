"""Connecting to Ray: an existing cluster when one is named, else a quiet local instance."""
from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from typing import Iterator

# Set before Ray starts (when not set by the user): no usage reporting from library runs.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
# Ray's switch for a one-machine instance: with it off, the node's IP is 127.0.0.1 and GCS,
# raylet, agents and workers listen on loopback only (else on every interface).
CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                object_store_memory: int | None = None) -> Iterator[bool]:
    """Make sure Ray is up for the block. Uses the already-initialised instance if there is
    one; else connects to `address` (or $RAY_ADDRESS); else starts a local instance with
    `num_cpus` (default: this machine's) and no dashboard. Yields True when it started or
    connected Ray itself, and then shuts it down when the block ends."""
    import ray

    if ray.is_initialized():
        yield False
        return
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    address = address or os.environ.get("RAY_ADDRESS") or None
    with nullcontext() if address else _loopback_only():
        if address:
            ray.init(address=address)
        else:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                     include_dashboard=False, object_store_memory=object_store_memory)
        try:
            yield True
        finally:
            ray.shutdown()


@contextmanager
def _loopback_only() -> Iterator[None]:
    """A local instance no other machine can reach. Ray reads `CLUSTER_ENV` when it is first
    imported, so the loaded constant is set too; both are restored when the block ends (a
    later session in this process may connect to a real cluster)."""
    from ray._private import ray_constants

    saved_env, saved = os.environ.get(CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[CLUSTER_ENV] = "0"               # Ray's processes read it too
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(CLUSTER_ENV, None)
        else:
            os.environ[CLUSTER_ENV] = saved_env
