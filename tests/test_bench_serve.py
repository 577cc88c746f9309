"""benchmarks/bench_serve.py runs: with tiny settings it starts its own local Ray and the
service on 127.0.0.1, answers every request in both configurations, prints the table and
writes the JSON; bad flags end with one line and exit code 2."""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import REPO_ROOT, subprocess_env

SCRIPT = REPO_ROOT / "benchmarks" / "bench_serve.py"


@pytest.mark.parametrize("flags, words", [
    (["--levels", "1,x"], "--levels"),
    (["--max-batch-size", "0"], "max-batch-size"),
    (["--model", "no/such/run"], "--model"),
])
def test_bad_flags_exit_2_with_one_line(flags, words):
    from driver_procs import PYTHON

    proc = subprocess.run([PYTHON, str(SCRIPT), *flags], env=subprocess_env(), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert words in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_tiny_run_answers_every_request_and_writes_json(tmp_path):
    from driver_procs import PYTHON, Driver, reap

    out = tmp_path / "bench.json"
    driver = Driver([PYTHON, str(SCRIPT), "--levels", "1", "--requests", "4", "--seconds",
                     "30", "--warmup", "1", "--json", str(out)], tmp_path / "bench.log",
                    cwd=REPO_ROOT).start()
    try:
        assert driver.wait(270) == 0, driver.output()[-4000:]
    finally:
        if driver.proc.poll() is None:
            driver.kill_group()
        reap(driver.tmpdir)
    text = driver.output()
    assert "req/s" in text and "load average before" in text and "load average after" in text
    data = json.loads(out.read_text())
    rows = {(r["config"], r["clients"]): r for r in data["rows"]}
    assert {("in-process", 1), ("in-process batched", 1), ("batch 1", 1),
            ("batched 16, 10 ms", 1)} == set(rows)
    for r in rows.values():
        assert r["requests"] >= 4 and r["errors"] == 0 and r["p50_ms"] > 0, r
    assert data["worker_torch_threads"] == 1
    assert {"throughput_ratio", "latency_ratio"} <= set(data["verdicts"])
