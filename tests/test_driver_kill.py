"""Every stage survives a killed driver: the driver runs in its own process group with its own
local Ray (address="local", own RAY_TMPDIR); once it has finished some work (a shard file, a
checkpoint) the whole group gets SIGKILL. Then: no process of its Ray may be left (stragglers
get SIGKILL, see driver_procs.reap), and the same command, run again into the same output,
finishes with every row exactly once and without redoing what was already finished (files
finished before the re-run keep their modification times).

Stages: rendering (the `swiftavatar render` CLI), paired-data production, generator and estimator
training on Ray Train (small driver scripts around the stage functions, since production's
random LPIPS trunk and a tiny estimator are test-only configurations).
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from driver_procs import PYTHON, Driver, reap, wait_for
from synthetic import NO_BROKEN, write_tiny_generators, write_toon_renders
from engines_for_tests import TARGET
from swiftavatar import shards

RENDER_COUNT, RENDER_SHARD = 640, 32  # 20 shards of toon renders at 64 px
PRODUCE_COUNT, PRODUCE_SHARD = 24, 2
EST_EPOCHS = 6

PRODUCE_DRIVER = ("import json, sys\n"
                  "from actors.produce_stage import run_produce_stage\n"
                  "from swiftavatar.production.config import ProduceConfig\n"
                  "card = run_produce_stage(ProduceConfig.from_dict(json.loads(sys.argv[1])))\n"
                  "print('DONE', json.dumps(card['this_run']))\n")
ESTIMATOR_DRIVER = ("import json, sys\n"
                    "from actors.train_estimator import run_estimator_training\n"
                    "from swiftavatar.estimator.config import EstimatorTrainConfig\n"
                    "s = run_estimator_training(EstimatorTrainConfig.from_dict("
                    "json.loads(sys.argv[1])))\n"
                    "print('DONE', json.dumps(s['metrics']))\n")


def mtimes(directory: Path, pattern: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(directory.glob(pattern))}


def kill_and_reap(driver: Driver) -> None:
    driver.kill_group()
    found, killed = reap(driver.tmpdir)  # raises if anything of its Ray outlives SIGKILL
    print(f"after SIGKILL of the driver's group: {len(found)} processes of its Ray were "
          f"still running, {len(killed)} needed SIGKILL", file=sys.stderr)


def rerun(args: list[str], log: Path, timeout: float) -> Driver:
    t0 = time.monotonic()
    driver = Driver(args, log).start()
    try:
        rc = driver.wait(timeout)
        print(f"re-run finished in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        assert rc == 0, f"the re-run failed ({rc}):\n{driver.output()[-6000:]}"
    finally:
        if driver.proc is not None and driver.proc.poll() is None:
            driver.kill_group()
        reap(driver.tmpdir)
        shutil.rmtree(driver.tmpdir, ignore_errors=True)
    return driver


def killed_midway(args: list[str], log: Path, started: Callable[[], bool], what: str,
                  timeout: float) -> None:
    """Run `args` as a driver, SIGKILL its process group as soon as `started()`, reap."""
    t0 = time.monotonic()
    driver = Driver(args, log).start()
    try:
        wait_for(started, timeout, what, driver, poll_s=0.02)
        print(f"{what} after {time.monotonic() - t0:.1f} s: SIGKILL", file=sys.stderr)
    finally:
        kill_and_reap(driver)
        shutil.rmtree(driver.tmpdir, ignore_errors=True)


# ---- rendering -------------------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_render_cli_killed_midrun_reruns_only_the_missing_shards(tmp_path):
    out = tmp_path / "renders"
    args = [PYTHON, "-m", "swiftavatar", "render", "--engine", "toon", "--count",
            str(RENDER_COUNT), "--size", "64", "--shard-size", str(RENDER_SHARD),
            "--workers", "1", "--out", str(out), "--no-progress"]
    total = RENDER_COUNT // RENDER_SHARD
    killed_midway(args, tmp_path / "first.log", lambda: bool(mtimes(out / "shards", "part-*")),
                  "the first shard file", timeout=90)
    before = mtimes(out / "shards", "part-*")
    assert 0 < len(before) < total, f"{len(before)} of {total} shards: not killed mid-run"

    second = rerun(args, tmp_path / "second.log", timeout=120)
    assert f"{total}/{total} shards done, {total - len(before)} written by this run" \
        in second.output(), second.output()[-3000:]
    after = mtimes(out / "shards", "part-*")
    assert len(after) == total
    assert {k: after[k] for k in before} == before  # finished shards were not redone
    assert not list((out / "shards").glob(".*")) and not list(out.glob("errors/.*"))
    data = shards.RenderedDataset(str(out))
    ids = data.table(["sample_id"]).column("sample_id").to_numpy()
    assert np.array_equal(ids, np.arange(RENDER_COUNT))  # every sample exactly once
    assert data.errors().num_rows == 0
    # the rows are the seed's samples, whichever run wrote them
    want = data.schema.sample(0, np.arange(RENDER_COUNT))
    got = data.vectors()
    np.testing.assert_allclose(got.continuous, want.continuous, atol=1e-6)
    assert np.array_equal(got.discrete, want.discrete)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["shards_skipped"] == len(before)


# ---- paired-data production -------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_production_driver_killed_midrun_reruns_only_the_missing_shards(tmp_path):
    g_avatar, g_real = write_tiny_generators(tmp_path / "gens")
    out = tmp_path / "pairs"
    config = dict(engine=TARGET, out=str(out), g_avatar=g_avatar, g_real=g_real,
                  count=PRODUCE_COUNT, seed=7, shard_size=PRODUCE_SHARD, prior=NO_BROKEN,
                  inversion={"steps": 4, "n_mean": 64}, augment={"num_augmentations": 2},
                  lpips_backbone="random",
                  lpips_allow_random=True, workers=1, batch_size=PRODUCE_SHARD, render_batch=8,
                  progress=False)
    args = [PYTHON, "-c", PRODUCE_DRIVER, json.dumps(config)]
    total = PRODUCE_COUNT // PRODUCE_SHARD
    killed_midway(args, tmp_path / "first.log", lambda: bool(mtimes(out / "pairs", "part-*")),
                  "the first pair shard", timeout=120)
    before = mtimes(out / "pairs", "part-*")
    assert 0 < len(before) < total, f"{len(before)} of {total} shards: not killed mid-run"

    second = rerun(args, tmp_path / "second.log", timeout=120)
    this_run = json.loads(second.output().split("DONE ", 1)[1].splitlines()[0])
    assert this_run["shards_written"] == total - len(before)
    assert this_run["shards_skipped"] == len(before)
    after = mtimes(out / "pairs", "part-*")
    assert len(after) == total and {k: after[k] for k in before} == before
    assert not list((out / "pairs").glob(".*"))
    from swiftavatar.production.pairs import read_pairs

    table = read_pairs(str(out))
    keys = sorted(zip(table.column("sample_id").to_pylist(),
                      table.column("aug_index").to_pylist()))
    assert keys == [(s, a) for s in range(PRODUCE_COUNT) for a in range(3)]
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["complete"] and card["counts"]["pairs_written"] == PRODUCE_COUNT * 3


# ---- estimator training (Ray Train) ------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_estimator_training_driver_killed_after_a_checkpoint_resumes_from_it(tmp_path):
    from swiftavatar.estimator.checkpoint import list_checkpoints, read_checkpoint
    from swiftavatar.estimator.config import EstimatorTrainConfig
    from swiftavatar.estimator.model import EstimatorConfig

    data = write_toon_renders(tmp_path / "renders", 64, seed=3, shard_size=16)
    run = tmp_path / "run"
    cfg = EstimatorTrainConfig(
        data=str(data), out=str(run), model=EstimatorConfig(input_size=32, head_hidden=64,
                                                           pretrained=None),
        epochs=EST_EPOCHS, batch=8, num_workers=1, cpus_per_worker=0.5, torch_threads=1,
        keep_checkpoints=EST_EPOCHS, progress=False)
    args = [PYTHON, "-c", ESTIMATOR_DRIVER, cfg.to_json()]
    killed_midway(args, tmp_path / "first.log", lambda: bool(list_checkpoints(run)),
                  "the first checkpoint", timeout=150)
    done = list_checkpoints(run)
    last = max(done)
    assert last < EST_EPOCHS, f"training reached epoch {last}: not killed mid-run"
    before = {k: (p / "checkpoint.pt").stat().st_mtime_ns for k, p in done.items()}
    steps_per_epoch = read_checkpoint(done[min(done)])["step"] // min(done)
    assert steps_per_epoch == 64 // 8

    second = rerun(args, tmp_path / "second.log", timeout=150)
    metrics = json.loads(second.output().split("DONE ", 1)[1].splitlines()[0])
    assert metrics["start_epoch"] == last  # resumed from the newest checkpoint
    assert metrics["epoch"] == EST_EPOCHS
    after = list_checkpoints(run)
    assert sorted(after) == list(range(1, EST_EPOCHS + 1))
    assert {k: (after[k] / "checkpoint.pt").stat().st_mtime_ns for k in before} == before
    for epoch, path in after.items():  # no epoch lost or trained twice
        assert read_checkpoint(path)["step"] == epoch * steps_per_epoch, epoch
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epoch"] == EST_EPOCHS and summary["step"] == EST_EPOCHS * steps_per_epoch


# ---- generator training (Ray Train) ------------------------------------------------------------
GAN_DRIVER = ("import json, sys\n"
              "from actors.train_generator import run_training\n"
              "from swiftavatar.training.gan_config import GanTrainConfig\n"
              "s = run_training(GanTrainConfig.from_dict(json.loads(sys.argv[1])))\n"
              "print('DONE', json.dumps({'step': s.step, 'images': s.images_seen}))\n")
GAN_STEPS, GAN_EVERY = 12, 2


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_generator_training_driver_killed_after_a_checkpoint_resumes_from_it(tmp_path):
    from swiftavatar.models import DiscriminatorConfig, GeneratorConfig
    from swiftavatar.training.checkpoint import list_checkpoints, read_checkpoint
    from swiftavatar.training.gan_config import GanTrainConfig

    tiny_g = GeneratorConfig(size=32, grid=8, min_feat_size=4, style_dim=64, local_channels=16,
                             local_layers=5, base_layers=2, depth_layers=3,
                             feature_channels=16, render_channels=(32, 16, 16))
    run = tmp_path / "g_real"
    cfg = GanTrainConfig(out=str(run), generator=tiny_g,
                         discriminator=DiscriminatorConfig(size=32, channels=(16, 32, 32, 32)),
                         steps=GAN_STEPS, batch=4, checkpoint_every=GAN_EVERY,
                         keep_checkpoints=GAN_STEPS, sample_every=0, n_samples=4,
                         w_mean_samples=64, real_count=32, data_shard_size=16, num_workers=1,
                         cpus_per_worker=0.5, torch_threads=1, progress=False)
    args = [PYTHON, "-c", GAN_DRIVER, json.dumps(cfg.to_dict())]
    killed_midway(args, tmp_path / "first.log", lambda: bool(list_checkpoints(run)),
                  "the first checkpoint", timeout=150)
    done = list_checkpoints(run)
    last = max(done)
    assert last < GAN_STEPS, f"training reached step {last}: not killed mid-run"
    before = {k: (p / "checkpoint.pt").stat().st_mtime_ns for k, p in done.items()}

    second = rerun(args, tmp_path / "second.log", timeout=150)
    result = json.loads(second.output().split("DONE ", 1)[1].splitlines()[0])
    assert result == {"step": GAN_STEPS, "images": GAN_STEPS * 4}   # no step lost or repeated
    after = list_checkpoints(run)
    assert sorted(after) == list(range(GAN_EVERY, GAN_STEPS + 1, GAN_EVERY))
    assert {k: (after[k] / "checkpoint.pt").stat().st_mtime_ns for k in before} == before
    for step, path in after.items():
        assert read_checkpoint(path)["step"] == step
