"""Connecting to Ray: an existing cluster when one is named, else a quiet local instance."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

# Set before Ray starts (when not set by the user): no usage reporting from library runs.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


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
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                 include_dashboard=False, object_store_memory=object_store_memory)
    try:
        yield True
    finally:
        ray.shutdown()
