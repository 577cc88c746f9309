"""`swiftavatar train-estimator`: flags resolve to the config, bad flags are named, and a real
run on a tiny paired dataset trains, checkpoints and resumes when --epochs grows."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import subprocess_env
from test_estimator import write_pairs

CMD = [sys.executable, "-m", "swiftavatar", "train-estimator"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("cli-est") / "pairs")


def run(args, **kw):
    return subprocess.run(CMD + [str(a) for a in args], capture_output=True, text=True,
                          env=subprocess_env(), **kw)


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_dry_run_resolves_flags_and_bad_flags_are_named(pairs, tmp_path):
    out = run(["--data", pairs, "--out", tmp_path / "run", "--rows", "inverted",
               "--epochs", 5, "--lambda-d", 3, "--input-size", 48, "--workers", 1,
               "--dry-run"], timeout=120)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    cfg = plan["config"]
    assert (cfg["augmented"], cfg["epochs"], cfg["lambda_d"]) == (False, 5, 3.0)
    assert (cfg["model"]["input_size"], cfg["num_workers"]) == (48, 1)
    assert plan["data"]["kind"] == "pairs"          # 5% of the sample ids held out (by hash)
    assert plan["data"]["rows"] == {"train": 14, "val": 2}
    assert plan["resume_from_epoch"] is None
    paper = json.loads(run(["--data", pairs, "--out", tmp_path / "p", "--preset", "paper",
                            "--dry-run"], timeout=120).stdout)["config"]
    assert (paper["batch"], paper["epochs"], paper["model"]["input_size"]) == (256, 100, 224)
    for args, flag in ((["--epochs", 0], "--epochs"), (["--batch", 3, "--workers", 2], "--batch"),
                       (["--pretrained", tmp_path / "none.pth"], "--pretrained"),
                       (["--val-fraction", 1.5], "--val-fraction")):
        bad = run(["--data", pairs, "--out", tmp_path / "x", *args, "--dry-run"], timeout=120)
        assert bad.returncode == 2 and flag in bad.stderr, (args, bad.stderr)
    missing = run(["--data", tmp_path / "nothing", "--out", tmp_path / "x", "--dry-run"],
                  timeout=120)
    assert missing.returncode == 2 and "--data" in missing.stderr


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_trains_on_ray_train_and_resumes_with_more_epochs(pairs, tmp_path):
    out = tmp_path / "run"
    common = ["--data", pairs, "--out", out, "--input-size", 32, "--pretrained", "none",
              "--batch", 8, "--workers", 1, "--cpus-per-worker", 0.5, "--torch-threads", 1,
              "--val-fraction", 0, "--no-progress"]
    first = run(common + ["--epochs", 1], timeout=200)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "epoch 1/1" in first.stdout
    again = run(common + ["--epochs", 2], timeout=200)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["data"]["rows_train"]
    assert rows == 48                                  # 16 samples x 3 rows (all rows)
    assert (summary["epoch"], summary["step"]) == (2, 2 * rows // 8)
    assert sorted(p.name for p in (out / "train").glob("checkpoint_0*")) == [
        "checkpoint_00001", "checkpoint_00002"]
    # a different loss weight is a different run: refused, named
    clash = run(common + ["--epochs", 3, "--lambda-d", 2], timeout=200)
    assert clash.returncode == 2 and "lambda_d" in clash.stderr
