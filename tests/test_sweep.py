"""Sweeps on Ray Tune (tune/): sweep-file validation naming the bad field, the stages a
parameter forces, re-augmentation from stored latents (it repeats production exactly), the
cluster check, the plot, and a real 2-trial sweep on the session's Ray instance that is killed
after its first trial and resumed, with its table, best config and plot checked. Data: toon
renders at 32 px written as a paired dataset; a tiny estimator; a random LPIPS trunk."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from conftest import subprocess_env
from swiftavatar import shards
from swiftavatar.evaluation.noticed import ATTRIBUTES
from synthetic import write_toon_pairs
from tune.space import SweepError, stages_for
from tune.spec import load_sweep, spec_from_dict

TUNE_DIR = Path(__file__).resolve().parents[1] / "tune"
SIZE = 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_sweep(pairs: Path, **over) -> dict:
    raw = {"name": "tiny", "data": {"pairs": str(pairs)},
           "params": {"estimator.lambda_d": {"grid": [1.0, 10.0]}},
           "budget": {"epochs": 2, "num_samples": 1, "max_concurrent_trials": 1},
           "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
           "validation": {"count": 4, "size": SIZE, "lpips_backbone": "random",
                          "lpips_allow_random": True},
           "estimator": {"model": {"input_size": SIZE, "head_hidden": 64, "pretrained": None},
                         "batch": 8, "num_workers": 1, "cpus_per_worker": 0.5,
                         "torch_threads": 1}}
    raw.update(over)
    return raw


# ---- sweep files ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,stages", [("embedded", ("train",)),
                                         ("estimator_loss", ("train",)),
                                         ("augmentation", ("augment", "train")),
                                         ("inversion", ("produce", "train")),
                                         ("color", ("finetune", "produce", "train"))])
def test_shipped_sweep_files_load(name, stages):
    spec = load_sweep(TUNE_DIR / f"{name}.yaml")
    assert spec.name == name and spec.stages == stages
    assert spec.validation.seed != 20230207          # never the test EvalSet's seed
    assert load_sweep(name).fingerprint() == spec.fingerprint()   # shipped name lookup


@pytest.mark.parametrize("change,words", [
    ({"budjet": {}}, ["budjet", "did you mean 'budget'"]),
    ({"budget": {"epoch": 2}}, ["budget.epoch", "did you mean 'epochs'"]),
    ({"params": {"estimator.lamda_d": 3}}, ["params.estimator.lamda_d", "'lambda_d'"]),
    ({"params": {"estimatr.lambda_d": 3}}, ["params.estimatr.lambda_d", "'estimator'"]),
    ({"params": {"augment.hair": {"uniform": [0.5, 1.5]}}}, ["params.augment.hair = 1.5",
                                                             "[0, 1]"]),
    ({"params": {"augment.hair": {"between": [0, 1]}}}, ["params.augment.hair", "grid"]),
    ({"params": {"estimator.lambda_d": {"loguniform": [0, 10]}}}, ["loguniform", "> 0"]),
    ({"params": {"estimator.batch": {"grid": [8, 7.5]}}}, ["params.estimator.batch",
                                                           "integer"]),
    ({"params": {"estimator.lambda_d": -1}}, ["params.estimator.lambda_d = -1", ">= 0"]),
    ({"validation": {"seed": 20230207}}, ["validation.seed", "test set"]),
    ({"resources": {"trial_cpus": 0}}, ["resources.trial_cpus", "> 0"]),
    ({"scheduler": {"grace_period": 5}}, ["scheduler.grace_period", "budget.epochs"]),
    ({"estimator": {"num_workerz": 2}}, ["estimator.num_workerz", "num_workers"]),
    ({"estimator": {"batch": 7, "num_workers": 2}}, ["estimator.batch", "divisible"]),
    ({"params": {"finetune.lambda_color": 1.0}}, ["data.renders"]),
    ({"name": "has space"}, ["name"]),
])
def test_bad_fields_are_named(change, words, tmp_path):
    raw = tiny_sweep(tmp_path)
    raw.update(change)
    with pytest.raises(SweepError) as err:
        spec_from_dict(raw)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparams: {estimator.lambda_d: [1, 2\n")
    with pytest.raises(SweepError, match="bad.yaml: not valid YAML"):
        load_sweep(bad)
    with pytest.raises(SweepError, match="shipped sweeps: .*embedded"):
        load_sweep(tmp_path / "missing.yaml")


def test_a_trial_runs_only_the_stages_its_parameters_touch():
    assert stages_for(["estimator.lambda_d", "estimator.sce_alpha"]) == ("train",)
    assert stages_for(["augment.hair", "estimator.lr"]) == ("augment", "train")
    assert stages_for(["inversion.lambda_i", "augment.hair"]) == ("produce", "train")
    assert stages_for(["finetune.lambda_color"]) == ("finetune", "produce", "train")


def test_cluster_check_names_the_concurrency(tmp_path):
    from tune.runner import check_cluster, trial_cpus

    spec = spec_from_dict(tiny_sweep(tmp_path, budget={"epochs": 2,
                                                       "max_concurrent_trials": 3}))
    assert trial_cpus(spec) == pytest.approx(0.1 + 0.5 + 0.25)
    check_cluster(spec, 3.0)
    with pytest.raises(SweepError, match="budget.max_concurrent_trials 3 .* lower "
                                         "budget.max_concurrent_trials to 2"):
        check_cluster(spec, 2.0)


def test_plot_marks_the_best_trial():
    from tune.plot import lpips_by_param
    from tune.space import parse_param

    params = (parse_param("estimator.lambda_d", {"loguniform": [1, 30]}),
              parse_param("estimator.sce_alpha", {"choice": [0.1, 0.5]}))
    rows = [{"values": {"estimator.lambda_d": d, "estimator.sce_alpha": a}, "val_lpips": v,
             "status": s, "best": b} for d, a, v, s, b in
            [(1.0, 0.1, 0.20, "complete", False), (3.0, 0.5, 0.15, "complete", True),
             (20.0, 0.1, 0.25, "stopped at epoch 1", False)]]
    img = lpips_by_param(rows, params, "t")
    assert img.dtype == np.uint8 and img.shape == (340, 760, 3)       # 2 panels + header
    red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)
    assert red[40:, :380].sum() > 20 and red[40:, 380:].sum() > 20    # ring in each panel
    with pytest.raises(ValueError, match="nothing to plot"):
        lpips_by_param([{**rows[0], "val_lpips": None}], params, "t")


# ---- re-augmentation from stored latents ----------------------------------------------------
def write_generator(directory: Path, seed: int) -> str:
    """A tiny untrained generator checkpoint (32 px, style_dim 32) in the training format."""
    from swiftavatar.models import (Discriminator, DiscriminatorConfig, GeneratorConfig,
                                    SemanticGenerator)
    from swiftavatar.training.checkpoint import make_payload, save_checkpoint

    gc = GeneratorConfig(size=32, grid=8, min_feat_size=4, style_dim=32, local_channels=16,
                         local_layers=5, base_layers=2, depth_layers=3, feature_channels=16,
                         render_channels=(32, 16, 16))
    torch.manual_seed(seed)
    g, d = SemanticGenerator(gc), Discriminator(DiscriminatorConfig(size=32,
                                                                    channels=(16, 32, 32, 32)))
    payload = make_payload(
        g=g, d=d, g_ema=g, g_opt=torch.optim.Adam(g.parameters()),
        d_opt=torch.optim.Adam(d.parameters()), step=1, images_seen=4, mean_path_length=0.0,
        run_config={"domain": "avatar"},
        w_mean=g.mean_latent(256, generator=torch.Generator().manual_seed(0)))
    return str(save_checkpoint(directory, payload).parent)


LAMBDAS = {"background": 1.0, "hair": 0.3, "eyeglasses": 0.06}


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    """Pairs written by the real inversion actor in this process (tiny generators, squares
    engine, 4 samples x (1 + 2) rows), with their dataset card."""
    from actors.inversion_worker import InversionWorker
    from actors.produce_stage import CARD_FILE, build_card, prepare_output, render_job
    from actors.renderer import EngineRenderer
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig, produce_inversion
    from swiftavatar.production.plan import plan_produce
    from engines_for_tests import TARGET

    root = tmp_path_factory.mktemp("produced")
    g_a, g_r = write_generator(root / "ga", 0), write_generator(root / "gr", 1)
    cfg = ProduceConfig(engine=TARGET, out=str(root / "src"), g_avatar=g_a, g_real=g_r,
                        count=4, seed=7, shard_size=2,
                        inversion=produce_inversion(steps=2, n_mean=64),
                        augment=AugmentConfig(num_augmentations=2, lambdas=LAMBDAS),
                        prior={"discrete_weights": {"shape": {"broken": 0.0}}},
                        lpips_backbone="random", lpips_allow_random=True,
                        progress=False)
    plan = plan_produce(cfg)
    prepare_output(plan)
    renderer, worker = EngineRenderer(render_job(plan)), InversionWorker(plan.job)
    for k in range(plan.num_shards):
        worker.produce_shard(k, *renderer.render_tables(k, *plan.shard_range(k)))
    card = build_card(plan, [], 0, 0.0)
    (root / "src" / CARD_FILE).write_text(json.dumps(card, default=str))
    return cfg


def test_reaugment_repeats_production_and_moves_only_the_changed_part(produced, tmp_path):
    """With the production lambdas re-augmentation gives the same latents and faces; with
    another hair lambda only the hair codes of the augmented rows change (Eq. 7)."""
    from swiftavatar.semantics import HAIR
    from tune.reaugment import reaugment_pairs

    cfg = produced

    def read(d):
        t = pa.concat_tables([pq.read_table(p) for p in sorted(Path(d).glob("pairs/*.parquet"))])
        lat = np.asarray(t.column("latent").to_pylist(), np.float32).reshape(4, 3, -1, 32)
        faces = np.stack([shards.decode_png(p) for p in t.column("realistic_png").to_pylist()])
        return t, lat, faces.astype(np.int16)

    src, lat0, faces0 = read(cfg.out)
    same = reaugment_pairs(cfg.out, str(tmp_path / "same"), {})     # the card's settings
    t1, lat1, faces1 = read(tmp_path / "same")
    assert same["rows"] == src.num_rows == 12 and same["samples"] == 4
    assert t1.column("aug_index").to_pylist() == src.column("aug_index").to_pylist()
    assert np.array_equal(lat1, lat0)
    assert np.abs(faces1 - faces0).max() <= 1        # batch sizes differ: rounding only
    reaugment_pairs(cfg.out, str(tmp_path / "hair"), {"hair": 0.9})
    t2, lat2, faces2 = read(tmp_path / "hair")
    hair_rows = [2 + 2 * HAIR, 3 + 2 * HAIR]
    other = [r for r in range(lat0.shape[2]) if r not in hair_rows]
    assert np.array_equal(lat2[:, 0], lat0[:, 0])                  # aug_index 0: unchanged
    assert np.array_equal(faces2[::3], faces0[::3])
    assert np.array_equal(lat2[:, 1:, other], lat0[:, 1:, other])  # other parts: same noise
    assert not np.allclose(lat2[:, 1:, hair_rows], lat0[:, 1:, hair_rows])
    # Eq. 7 with the same noise n: w' - w* = lambda (n - w*), so the offsets scale by 0.9 / 0.3
    d0 = lat0[:, 1:, hair_rows] - lat0[:, :1, hair_rows]
    d2 = lat2[:, 1:, hair_rows] - lat2[:, :1, hair_rows]
    np.testing.assert_allclose(d2, d0 * 3.0, rtol=1e-3, atol=1e-4)
    assert not list(tmp_path.glob(".*tmp*"))                       # nothing half-written


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_augment_trials_share_one_cached_dataset(produced, ray_local, tmp_path):
    """prepare_data: an estimator-only trial uses the source as it is; the first trial with a
    hair lambda re-augments in a Ray task, the next with the same lambda reuses its output."""
    from tune.stages import prepare_data

    spec = spec_from_dict(tiny_sweep(produced.out, params={"augment.hair": {"grid": [0.9]}}))
    src, info = prepare_data(spec, {"estimator.lambda_d": 3.0}, tmp_path / "cache")
    assert src == os.path.abspath(produced.out) and info["stages"] == ["train"]
    values = {"augment.hair": 0.9, "estimator.lambda_d": 3.0}
    first, info1 = prepare_data(spec, values, tmp_path / "cache")
    assert info1["stages"] == ["augment", "train"] and info1["reused"] == []
    manifest = json.loads((Path(first) / "reaugment.json").read_text())
    assert manifest["lambda_aug"] == {**LAMBDAS, "hair": 0.9} and manifest["rows"] == 12
    mtime = (Path(first) / "reaugment.json").stat().st_mtime_ns
    again, info2 = prepare_data(spec, {**values, "estimator.lambda_d": 30.0}, tmp_path / "cache")
    assert again == first and info2["reused"] == ["augment"]
    assert (Path(first) / "reaugment.json").stat().st_mtime_ns == mtime
    other, _ = prepare_data(spec, {"augment.hair": 0.5}, tmp_path / "cache")
    assert other != first


# ---- a real sweep, killed and resumed -------------------------------------------------------
def _wait_for(pred, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.ray
@pytest.mark.timeout(420)
@pytest.mark.slow
def test_sweep_killed_after_its_first_trial_resumes_and_writes_results(ray_local, tmp_path):
    from ray.util.placement_group import placement_group_table

    from swiftavatar.estimator.checkpoint import list_checkpoints, load_estimator
    from tune.runner import SweepPaths, build_tuner, run_sweep

    pairs = write_toon_pairs(tmp_path / "pairs")
    sweep_file = tmp_path / "tiny.yaml"
    sweep_file.write_text(yaml.safe_dump(tiny_sweep(pairs)))
    out = tmp_path / "out"
    exp = out / "tiny"
    pgs_before = set(placement_group_table())
    env = subprocess_env(RAY_ADDRESS=ray_local.get_runtime_context().gcs_address)
    proc = subprocess.Popen([sys.executable, "-m", "swiftavatar", "sweep", str(sweep_file),
                             "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: list(exp.glob("estimators/*/summary.json")), 150,
                  "the first trial to finish", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)       # the driver dies: an interrupted sweep
        proc.wait(30)
    first = json.loads(next(exp.glob("estimators/*/summary.json")).read_text())
    first_id = Path(first["out"]).name
    ckpts = list_checkpoints(first["out"])
    before = {e: p.stat().st_mtime_ns for e, p in ckpts.items()}
    assert max(before) == 2                       # trained both epochs (keep_checkpoints 1)

    spec = spec_from_dict(tiny_sweep(pairs))
    res = run_sweep(spec, out)
    assert res["resumed"]
    rows = res["rows"]
    assert len(rows) == 2 and first_id in {r["trial_id"] for r in rows}
    by_id = {r["trial_id"]: r for r in rows}
    assert by_id[first_id]["status"] == "complete"
    assert {e: p.stat().st_mtime_ns for e, p in list_checkpoints(first["out"]).items()} \
        == before                                 # the finished trial was not trained again
    for r in rows:
        assert r["status"] in ("complete", "stopped at epoch 1") and r["stages"] == ["train"]
        assert 0 < r["val_lpips"] < 1 and r["epochs"] == max(r["history"])
    assert sorted(r["values"]["estimator.lambda_d"] for r in rows) == [1.0, 10.0]
    best = min(rows, key=lambda r: r["val_lpips"])
    assert best["best"] and sum(r["best"] for r in rows) == 1
    # the files: table, csv, best config (pointing at a loadable estimator), plot
    table = (exp / "results.md").read_text()
    assert table.count("**best**") == 1 and f"{best['trial_id']} **best**" in table
    # the evaluation's reference rows and per-attribute accuracy, on the same validation faces
    assert set(res["references"]) == {"random prior vectors", "constant (designer's mode)"}
    assert all(0 < m["val_lpips"] < 1 and 0 <= m["val_attr_skin_tone"] <= 1
               for m in res["references"].values())
    assert "| *random prior vectors* |" in table and "| reference |" in table
    assert all(set(r["attributes"]) == set(ATTRIBUTES)
               and all(0 <= v <= 1 for v in r["attributes"].values()) for r in rows)
    assert len((exp / "results.csv").read_text().strip().splitlines()) == 3
    doc = json.loads((exp / "best_config.json").read_text())
    assert doc["trial_id"] == best["trial_id"] and doc["val_lpips"] == best["val_lpips"]
    assert doc["values"] == best["values"]
    model, schema, meta = load_estimator(doc["estimator_run"])
    assert meta["run_config"]["lambda_d"] == best["values"]["estimator.lambda_d"]
    assert meta["metrics"]["val_lpips"] == pytest.approx(best["val_lpips"])
    png = shards.decode_png((exp / "lpips_by_param.png").read_bytes())
    assert png.shape == (340, 380, 3)
    # no trial's placement group outlives it (ASHA's stops included)
    assert all(pg["state"] == "REMOVED" for k, pg in placement_group_table().items()
               if k not in pgs_before)
    # a finished sweep run again trains nothing and gives the same table
    again = run_sweep(spec, out)
    assert again["resumed"] and again["table"] == res["table"]
    changed = spec_from_dict(tiny_sweep(pairs, params={"estimator.lambda_d": {"grid": [3.0]}}))
    with pytest.raises(SweepError, match="different sweep file .* --restart"):
        build_tuner(changed, SweepPaths.of(changed, out))


def test_cli_dry_run_and_errors(tmp_path, capsys):
    from swiftavatar.cli import main

    pairs = write_toon_pairs(tmp_path / "pairs", n=4, shard_size=4, aug=1)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(tiny_sweep(pairs)))
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["stages"] == ["train"] and shown["trials"] == "2"
    assert shown["would"] == "start" and shown["cpus_per_trial"] == pytest.approx(0.85)
    assert main(["sweep", str(f), "--pairs", str(tmp_path / "nope"), "--dry-run"]) == 2
    assert "data.pairs: no such directory" in capsys.readouterr().err
    f.write_text(yaml.safe_dump(tiny_sweep(pairs, budget={"epochz": 1})))
    assert main(["sweep", str(f), "--dry-run"]) == 2
    assert "budget.epochz: unknown field" in capsys.readouterr().err


# ---- which engine a sweep may render with ---------------------------------------------------
def test_a_dataset_card_may_name_only_a_registered_engine(produced, tmp_path):
    """The source's card names an import target (the tests' engine): a produce trial refuses to
    import it unless the sweep file itself names the engine (`data.engine`)."""
    from engines_for_tests import TARGET
    from swiftavatar.engines.registry import UntrustedEngineError
    from tune.stages import produce_config
    from tune.trial import engine_spec_of

    raw = tiny_sweep(produced.out, params={"inversion.lambda_i": {"grid": [0.5]}})
    spec = spec_from_dict(raw)
    with pytest.raises(UntrustedEngineError, match=r"dataset_card\.json names the engine "
                                                   r"'engines_for_tests:SquaresEngine'.*"
                                                   r"data\.engine: engines_for_tests"):
        produce_config(spec, {"inversion.lambda_i": 0.5}, tmp_path / "cache")
    card = Path(produced.out) / "dataset_card.json"
    saved = card.read_text()
    try:  # an edited card cannot make the sweep import and call something else
        card.write_text(saved.replace(TARGET, "tempfile:mkdtemp"))
        with pytest.raises(UntrustedEngineError, match="tempfile:mkdtemp"):
            engine_spec_of(produced.out, "squares")
    finally:
        card.write_text(saved)
    trusted = spec_from_dict({**raw, "data": {"pairs": produced.out, "engine": TARGET}})
    assert produce_config(trusted, {"inversion.lambda_i": 0.5}, tmp_path / "cache").engine == TARGET
    assert trusted.to_dict()["data"]["engine"] == TARGET
    assert "engine" not in spec.to_dict()["data"]   # older sweeps keep their fingerprint
    with pytest.raises(SweepError, match="data.engine: cannot import engine target"):
        spec_from_dict({**raw, "data": {"pairs": produced.out, "engine": "no_such_mod:X"}})
