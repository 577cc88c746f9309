"""Elasticity and faults at cluster level: paired-data production on a
`ray.cluster_utils.Cluster` (three raylets on this machine) while a node joins and another is
removed without grace. The cluster lives in its own driver process (tests/elastic_driver.py)
with its own RAY_TMPDIR, so it cannot meet the session's Ray instance; whatever of it outlives
the driver is found by that directory and killed (driver_procs.reap).

What must hold: the run finishes; every (sample, augmentation) row is in the Parquet output
exactly once; the inversion pool grew onto node B; node B was removed while its actor was
alive and shards were left; the added node C finished inversion tasks (Ray's state API).
"""
from __future__ import annotations

import json
import shutil
import sys
import time

import pytest

from conftest import TESTS_DIR
from driver_procs import PYTHON, Driver, reap
from synthetic import write_tiny_generators
from swiftavatar.production.pairs import read_pairs

COUNT, SHARD, STEPS, AUGS = 48, 2, 8, 2


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_production_survives_a_node_joining_and_another_dying(tmp_path):
    g_avatar, g_real = write_tiny_generators(tmp_path / "gens")
    out, result_file = tmp_path / "pairs", tmp_path / "result.json"
    args = [PYTHON, "-m", "elastic_driver", "--out", str(out), "--result", str(result_file),
            "--g-avatar", g_avatar, "--g-real", g_real, "--count", str(COUNT),
            "--shard-size", str(SHARD), "--steps", str(STEPS), "--workers", "3"]
    t0 = time.monotonic()
    driver = Driver(args, tmp_path / "driver.log", cwd=TESTS_DIR).start()
    try:
        rc = driver.wait(timeout=200)
    finally:
        if driver.proc.poll() is None:
            driver.kill_group()
        found, killed = reap(driver.tmpdir)
        shutil.rmtree(driver.tmpdir, ignore_errors=True)
    log = driver.output()
    print(f"elastic driver: {time.monotonic() - t0:.1f} s; {len(found)} processes of its "
          f"cluster outlived it, {len(killed)} needed SIGKILL", file=sys.stderr)
    print("\n".join(ln for ln in log.splitlines() if ln.startswith("[elastic")),
          file=sys.stderr)
    assert rc == 0 and result_file.is_file(), f"driver failed ({rc}):\n{log[-6000:]}"
    result = json.loads(result_file.read_text())
    assert result["error"] is None, result["error"]

    # the run finished, every row exactly once
    card = result["card"]
    total = COUNT // SHARD
    assert card["complete"] and card["counts"]["shards_done"] == total
    table = read_pairs(str(out))
    keys = list(zip(table.column("sample_id").to_pylist(), table.column("aug_index").to_pylist()))
    assert sorted(keys) == [(s, a) for s in range(COUNT) for a in range(1 + AUGS)]
    assert not list((out / "pairs").glob(".*"))

    # the events happened mid-run, with work on the nodes concerned
    nodes, at = result["nodes"], result["shards_done_at"]
    assert at["node_added"] < total and at["node_removed"] < total, at
    assert result["actors_on_b_when_removed"] >= 1, (  # B was working when it died
        f"no inversion actor on B when it was removed: {result['events']}")
    tasks = result["tasks_by_node"]
    assert tasks.get(nodes["c"], 0) >= 1, f"the added node finished no inversion task: {tasks}"
