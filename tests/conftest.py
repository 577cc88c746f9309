"""Shared fixtures. One local Ray instance serves the whole session, started only when a test
asks for `ray_local`; tests that use it carry `@pytest.mark.ray` and a tight timeout."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

# Environment for Ray started by tests (in this process or in CLI subprocesses).
RAY_TEST_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # no token written to the home directory
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
}


def pytest_configure(config):
    # Ray Data's own context reads deprecated settings when it is first created: not ours.
    config.addinivalue_line(
        "filterwarnings", "ignore:`use_:DeprecationWarning:ray.data.context")


def python_path_with_tests() -> str:
    """PYTHONPATH that lets any process (a Ray worker, a CLI subprocess) import the test-only
    modules in tests/, e.g. the engine target 'engines_for_tests:SquaresEngine'."""
    parts = [str(TESTS_DIR), str(REPO_ROOT)]
    old = os.environ.get("PYTHONPATH")
    return os.pathsep.join(parts + ([old] if old else []))


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: the test engine importable, Ray quiet."""
    env = {**os.environ, **RAY_TEST_ENV, "PYTHONPATH": python_path_with_tests(), **extra}
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance (2 CPUs, 256 MiB object store, no dashboard) for the session.
    Workers inherit PYTHONPATH, so they can import modules from tests/."""
    import ray

    for k, v in RAY_TEST_ENV.items():
        os.environ.setdefault(k, v)
    os.environ["PYTHONPATH"] = python_path_with_tests()
    os.environ.pop("RAY_ADDRESS", None)
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must stay short
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             object_store_memory=256 * 2 ** 20, _temp_dir=temp_dir, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (`pytestmark = usefixtures(...)`): as in the Ray
    workers, the same float paths, and no stalls on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _alive_actor_ids() -> set[str]:
    """Alive actors a test made; detached ones (Ray Data's own singletons) are left alone."""
    from ray._private import state

    return {aid for aid, a in state.actors().items()
            if a.get("State") == "ALIVE" and not a.get("IsDetached")}


@pytest.fixture(autouse=True)
def _no_leftover_actors(request):
    """After a test that used `ray_local`, end the actors it left alive (a failed test's
    actor pool would otherwise hold CPUs and starve the tests after it)."""
    if "ray_local" not in request.fixturenames:
        yield
        return
    ray = request.getfixturevalue("ray_local")
    before = _alive_actor_ids()
    yield

    deadline = time.monotonic() + 10.0  # Ray Data ends its pools asynchronously
    left = _alive_actor_ids() - before
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _alive_actor_ids() - before
    core = ray._private.worker.global_worker.core_worker
    for aid in left:
        try:
            core.kill_actor(ray.ActorID(bytes.fromhex(aid)), True)
        except Exception as e:  # e.g. an actor owned by another driver, or already gone
            print(f"could not kill actor {aid}: {type(e).__name__}", file=sys.stderr)
    if left:
        print(f"killed {len(left)} actor(s) left alive by {request.node.nodeid}", file=sys.stderr)


@pytest.fixture
def squares_engine():
    from engines_for_tests import SquaresEngine

    with SquaresEngine() as engine:
        yield engine
