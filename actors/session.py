"""Connecting to Ray: an existing cluster when one is named, else a quiet local instance.
Either way Ray's own output goes to the run's log file, not the terminal (actors.ray_logs)."""
from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from typing import Iterator

# Set before Ray starts (when not set by the user): no usage reporting from library runs.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
# Ray's switch for a one-machine instance: with it off, the node's IP is 127.0.0.1 and GCS,
# raylet, agents and workers listen on loopback only (else on every interface).
CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# What a user gave wrong (a bad value, an unknown name): the message says it all, no log tail.
_INPUT_ERRORS = (ValueError, LookupError)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                object_store_memory: int | None = None,
                log_dir: str | os.PathLike | None = None,
                relay: tuple[str, ...] = ()) -> Iterator[bool]:
    """Make sure Ray is up for the block. Uses the already-initialised instance if there is
    one; else connects to `address` (or $RAY_ADDRESS); else starts a local instance with
    `num_cpus` (default: this machine's) and no dashboard. Yields True when it started or
    connected Ray itself, and then shuts it down when the block ends.

    Ray's output while it is up goes to `log_dir`/logs/ray.log (the run directory; see
    actors.ray_logs for what goes there and $SWIFTAVATAR_VERBOSE), except the workers' lines
    that start with one of `relay` (a stage's own progress lines), which show on the terminal
    too; a failure in the block prints that file's last lines and its path to stderr."""
    import ray

    from actors.ray_logs import RayLog, log_path

    if ray.is_initialized():
        yield False
        return
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    address = address or os.environ.get("RAY_ADDRESS") or None
    log = RayLog(log_path(log_dir), relay=relay)
    log.start()
    try:
        with nullcontext() if address else _loopback_only():
            if address:
                ray.init(address=address, log_to_driver=True)
            else:
                ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                         include_dashboard=False, object_store_memory=object_store_memory,
                         log_to_driver=True)
            try:
                yield True
            finally:
                ray.shutdown()
    except Exception as e:
        if not isinstance(e, _INPUT_ERRORS):
            log.close()                    # the terminal back before the tail goes there
            log.print_tail()
        raise
    finally:
        log.close()


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
