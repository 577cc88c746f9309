"""The main job (`swiftavatar demo`) end to end on a tiny config, and its CLI checks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from swiftavatar.cli.demo_cmd import DemoConfig, EngineRun, ProduceRun, run_demo


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_demo_runs_end_to_end_and_resumes(ray_local, tmp_path):
    cfg = DemoConfig(out=str(tmp_path / "run"), shard_size=16, preset="test",
                     engines=(EngineRun("toon", 32, 64), EngineRun("avataaars", 16, 64)),
                     produce=(ProduceRun("toon", 3, steps=2, augmentations=1, n_mean=64),),
                     produce_shard_size=2)
    report = run_demo(cfg)
    (made,) = report["produce"]
    assert (made["engine"], made["samples"], made["pairs"]) == ("toon", 3, 6)
    assert (tmp_path / "run" / "pairs" / "toon" / "figure5.png").stat().st_size > 1000
    assert [r["engine"] for r in report["render"]] == ["toon", "avataaars"]
    assert [r["rendered"] for r in report["render"]] == [32, 16]
    for engine in ("toon", "avataaars"):
        assert (tmp_path / "run" / "render" / engine / "contact_sheet.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["preset"] == "test"
    # A second run finds everything done and writes nothing new.
    again = run_demo(cfg)
    assert [r["shards_written"] for r in again["render"]] == [0, 0]
    assert again["produce"][0]["pairs"] == 6


def test_demo_dry_run_and_bad_flags():
    cmd = [sys.executable, "-m", "swiftavatar", "demo"]
    out = subprocess.run(cmd + ["--quick", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["preset"] == "quick"
    bad = subprocess.run(cmd + ["--workers", "0", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--workers" in bad.stderr
    bad = subprocess.run(cmd + ["--engines", "nope", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--engines" in bad.stderr
