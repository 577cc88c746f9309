"""`ray job submit` against a real Ray head started by the test: the render stage runs as a
job, its driver attaches to that head, and its Parquet output is complete.

The head is a separate cluster (own temp dir, own ports), not the session's `ray_local`
instance. It is stopped by PID (SIGTERM, then SIGKILL): never with `ray stop`, which would end
every Ray process of this user on the machine."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import RAY_TEST_ENV, REPO_ROOT
from driver_procs import pids_with_cmdline
from swiftavatar.shards import RenderedDataset

BIN = Path(sys.executable).parent
# Never uploaded with the working dir: the venv alone is about 6 GB (the upload limit is
# 500 MiB), and none of these is needed to run a stage.
EXCLUDES = [".venv", ".git", "runs", ".pytest_cache", "**/__pycache__", "*.egg-info"]
SAMPLES = 16


def _free_ports(n: int) -> list[int]:
    """n distinct ports free right now (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _stop(pids: set[int], marker: str, grace_s: float = 15.0, kill_s: float = 15.0) -> None:
    """SIGTERM every PID, wait up to `grace_s`, then SIGKILL whatever still runs with `marker`
    in its command line, again and again for up to `kill_s`: a dying raylet can start a worker
    after the first scan, and a killed process takes a moment to leave /proc. Only command
    lines holding `marker` are signalled (no reused PID is hit)."""
    def signal_all(targets: set[int], sig: int) -> None:
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    signal_all(pids | pids_with_cmdline(marker), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pids_with_cmdline(marker):
            return
        time.sleep(0.25)
    deadline = time.monotonic() + kill_s
    while (left := pids_with_cmdline(marker)) and time.monotonic() < deadline:
        signal_all(left, signal.SIGKILL)
        time.sleep(0.25)


def _wait_for_dashboard(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the Ray dashboard on port {port} did not answer in "
                                 f"{timeout_s:.0f} s")
        time.sleep(0.5)


def _head_env() -> dict[str, str]:
    """Environment of the head and of the `ray job` client: no token auth on either side
    (a token would be written to the home directory), no RAY_ADDRESS inherited from the
    session, and this venv's `python` first on PATH (what a job's entrypoint runs)."""
    env = {**os.environ, **RAY_TEST_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for key in ("RAY_ADDRESS", "PYTHONPATH"):
        env.pop(key, None)
    return env


def _ray(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ray"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_render_job_submitted_to_a_local_head_writes_every_sample(tmp_path):
    env = _head_env()
    temp_dir = tempfile.mkdtemp(prefix="rayjob-")  # short: Ray's socket paths must stay short
    (gcs_port, dash_port, client_port, agent_port, agent_grpc_port, metrics_port,
     env_agent_port) = _free_ports(7)
    pids: set[int] = set()
    try:
        started = _ray(
            "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
            f"--ray-client-server-port={client_port}",
            f"--dashboard-agent-listen-port={agent_port}",
            f"--dashboard-agent-grpc-port={agent_grpc_port}",
            f"--metrics-export-port={metrics_port}", f"--runtime-env-agent-port={env_agent_port}",
            "--num-cpus=2", f"--object-store-memory={256 * 2 ** 20}",
            "--disable-usage-stats", f"--temp-dir={temp_dir}", env=env, timeout=120)
        pids = pids_with_cmdline(temp_dir)
        assert started.returncode == 0, f"ray start failed:\n{started.stdout}\n{started.stderr}"
        assert pids, "ray start returned but no process of the head is running"
        _wait_for_dashboard(dash_port)

        address = f"http://127.0.0.1:{dash_port}"
        job_id = f"render-{uuid.uuid4().hex[:8]}"
        out = tmp_path / "out"
        runtime_env = {"working_dir": str(REPO_ROOT), "excludes": EXCLUDES}
        submitted = _ray(
            "job", "submit", f"--address={address}", f"--submission-id={job_id}",
            f"--runtime-env-json={json.dumps(runtime_env)}", "--",
            "python", "-m", "swiftavatar", "render", "--engine", "toon",
            "--count", str(SAMPLES), "--size", "64", "--shard-size", "8", "--out", str(out),
            "--no-progress", env=env, timeout=200)
        pids |= pids_with_cmdline(temp_dir)  # workers and the job's driver started since
        logs = submitted.stdout + submitted.stderr
        assert submitted.returncode == 0, f"ray job submit failed:\n{logs}"
        status = _ray("job", "status", f"--address={address}", job_id, env=env, timeout=60)
        assert f"Job '{job_id}' succeeded" in status.stdout + status.stderr, \
            f"job did not succeed:\n{status.stdout}{status.stderr}\n{logs}"

        # The driver attached to this head (RAY_ADDRESS is set for job drivers), not to a
        # new local instance; Ray's own lines go to the run's log, not to the job's output.
        assert f"logs: {out / 'logs' / 'ray.log'}" in logs, logs
        ray_log = (out / "logs" / "ray.log").read_text()
        assert "Connecting to existing Ray cluster" in ray_log, ray_log
        assert f":{gcs_port}" in ray_log, ray_log
        assert "Connecting to existing Ray cluster" not in logs, logs
        assert f"rendered {SAMPLES} of {SAMPLES} samples (0 errors)" in logs, logs

        dataset = RenderedDataset(str(out))
        assert sorted(dataset.shard_paths()) == [0, 1]  # 16 samples / 8 per shard
        ids = dataset.table(columns=["sample_id"]).column("sample_id").to_pylist()
        assert len(ids) == SAMPLES and len(set(ids)) == SAMPLES
        assert dataset.errors().num_rows == 0
    finally:
        pids |= pids_with_cmdline(temp_dir)
        _stop(pids, temp_dir)
        left = pids_with_cmdline(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not left, f"head processes still running after SIGKILL: {sorted(left)}"
