"""The main job (`swiftavatar demo`) end to end on a tiny config, and its CLI checks."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from actors.f2p_baselines import BaselinesConfig
from actors.main_job import DemoConfig, EngineRun, EstimateConfig, ProduceRun, run_demo
from swiftavatar.f2p.identity_train import IdentityTrainConfig
from swiftavatar.f2p.optimize import F2PConfig
from swiftavatar.f2p.parser_train import ParserTrainConfig
from swiftavatar.f2p.translator import TranslatorTrainConfig
from swiftavatar.estimator import EstimatorConfig, EstimatorTrainConfig
from swiftavatar.rundir import RunLockedError, run_lock
from swiftavatar.checkset.records import CATEGORIES, load_records

TINY_ESTIMATE = EstimateConfig(
    images_seen=24, eval_count=3, eval_size=32, check_align="none",
    estimator=EstimatorTrainConfig.embedded(
        model=EstimatorConfig(input_size=32, head_hidden=16, pretrained=None), batch=8,
        num_workers=1, val_fraction=0.0, cpus_per_worker=0.5, progress=False))
TINY_BASELINES = BaselinesConfig(
    imitator_epochs=1, imitator_size=32, imitator_batch=8,
    parser=ParserTrainConfig(size=32, train_faces=16, val_faces=4, epochs=1, batch=8),
    identity=IdentityTrainConfig(identities=8, views=2, val_identities=4, epochs=1, batch=8),
    translator=TranslatorTrainConfig(epochs=1, batch=8), translator_faces=8,
    f2p=F2PConfig(identity_weight=0.01, steps=2), timing_faces=1)


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.timeout(420)
def test_demo_runs_end_to_end_and_resumes(ray_local, tmp_path):
    cfg = DemoConfig(out=str(tmp_path / "run"), shard_size=16, preset="test",
                     engines=(EngineRun("toon", 32, 64), EngineRun("avataaars", 16, 64)),
                     produce=(ProduceRun("toon", 3, steps=2, augmentations=1, n_mean=64,
                                         finetune="always", finetune_steps=2,
                                         finetune_batch=4),),
                     produce_shard_size=2, estimate=TINY_ESTIMATE, baselines=TINY_BASELINES)
    report = run_demo(cfg)
    # stage 2: a G_avatar finetuned from the shipped G_real on the toon renders, used by
    # production (the card names its checkpoint)
    (tuned,) = report["finetune"]
    assert (tuned["engine"], tuned["step"], tuned["images"]) == ("toon", 2, 8)
    card = json.loads((tmp_path / "run" / "pairs" / "toon" / "dataset_card.json").read_text())
    assert "generators/toon" in json.dumps(card["generators"]["avatar"])
    (made,) = report["produce"]
    assert (made["engine"], made["samples"], made["pairs"]) == ("toon", 3, 6)
    assert (tmp_path / "run" / "pairs" / "toon" / "figure5.png").stat().st_size > 1000
    assert [r["engine"] for r in report["render"]] == ["toon", "avataaars"]
    assert [r["rendered"] for r in report["render"]] == [32, 16]
    for engine in ("toon", "avataaars"):
        assert (tmp_path / "run" / "render" / engine / "contact_sheet.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["preset"] == "test"
    # stages 3-4 ran for toon (rendered and produced): three estimators, four table rows
    assert set(report["estimators"]["toon"]) == {"Baseline", "+ domain adaptation",
                                                 "+ semantic augmentation"}
    assert report["estimators"]["toon"]["+ semantic augmentation"]["rows"] == 6
    assert report["estimators"]["toon"]["Baseline"]["rows"] == 32
    rows = [(r["engine"], r["method"], r["eval_set"]) for r in saved["evaluation"]]
    methods = ("Baseline", "+ domain adaptation", "+ semantic augmentation")
    assert rows == ([("toon", m, "faces") for m in methods + ("F2P", "F2P v2")]
                    + [("toon", m, "faces") for m in ("random prior vectors",
                                                       "constant (designer's mode)")]
                    + [("toon", m, "shifted faces") for m in methods]
                    + [("toon", "Baseline on engine renders", "engine renders")])
    assert all(0 <= r["lpips_mean"] < 1 and r["n"] == 3 for r in saved["evaluation"])
    assert all(set(r["attribute_accuracy"]) == {"skin tone", "hair colour", "hair style",
                                                "glasses", "facial hair", "headwear"}
               for r in saved["evaluation"])
    assert "correspondence" in saved
    # Table 1: the four methods with LPIPS and a time per face, in the report and its page
    assert [(r["engine"], r["method"]) for r in saved["table1"]] == [
        ("toon", m) for m in ("Baseline", "F2P", "F2P v2", "SwiftAvatar")]
    assert all(0 <= r["lpips"] < 1 and r["ms_per_face"] > 0 and r["n"] == 3
               for r in saved["table1"])
    for net in ("parser", "identity", "toon/imitator", "toon/translator"):
        assert (tmp_path / "run" / "f2p" / net).is_dir(), net
    html = (tmp_path / "run" / "report" / "report.html").read_text()
    assert "+ semantic augmentation" in html and "data:image/png;base64" in html
    assert "Table 1: comparison with F2P and F2P v2" in html
    # the real-photo check set on toon's + semantic augmentation estimator: files, the
    # report's section, and one line for the terminal
    checked = tmp_path / "run" / "report" / "check_photos" / "toon"
    assert (checked / "sheet.png").stat().st_size > 1000
    assert (checked / "table.txt").read_text().startswith("attribute")
    done = json.loads((checked / "check_photos.json").read_text())
    shipped = load_records()
    assert [p["id"] for p in done["photos"]] == [r.photo_id for r in shipped]
    assert done["model"].endswith("estimators/toon/semantic_augmentation")
    check = saved["check_photos"]["toon"]
    assert check["line"].startswith("check photos toon: skin ") and f"/{len(shipped)}" in check["line"]
    assert [r["of"] for r in check["table"]] == [
        sum(r.seen[f] is not None for r in shipped) for f in CATEGORIES]
    assert check["files"]["sheet"] == str(checked / "sheet.png") and check["missing"] == []
    assert "Real photos, <code>toon</code>" in html and "glasses" in html
    assert json.loads((tmp_path / "run" / "report" / "results.json").read_text()
                      )["check_photos"]["toon"]["table"] == check["table"]
    # A second run finds everything done and writes nothing new.
    again = run_demo(cfg)
    assert [r["shards_written"] for r in again["render"]] == [0, 0]
    assert again["finetune"][0]["step"] == 2
    assert again["produce"][0]["pairs"] == 6
    # the baselines' networks load from the run directory (same Table 1 LPIPS: same vectors)
    assert [r["lpips"] for r in again["table1"]] == [r["lpips"] for r in saved["table1"]]


@pytest.mark.slow
def test_demo_dry_run_and_bad_flags():
    cmd = [sys.executable, "-m", "swiftavatar", "demo"]
    out = subprocess.run(cmd + ["--quick", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["preset"] == "quick"
    bad = subprocess.run(cmd + ["--workers", "0", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--workers" in bad.stderr
    bad = subprocess.run(cmd + ["--engines", "nope", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--engines" in bad.stderr
    bad = subprocess.run(cmd + ["--finetune-steps", "0", "--dry-run"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "--finetune-steps" in bad.stderr
    ok = subprocess.run(cmd + ["--finetune", "always", "--finetune-steps", "7", "--dry-run"],
                        capture_output=True, text=True, timeout=120)
    runs = json.loads(ok.stdout)["produce"]
    assert [(r["finetune"], r["finetune_steps"]) for r in runs] == [("always", 7)] * 2


def test_demo_refuses_a_second_driver_on_one_run_directory(tmp_path):
    run = tmp_path / "run"
    with run_lock(run, "test driver"):
        with pytest.raises(RunLockedError, match=rf"pid {os.getpid()}\).*{run.name}"):
            run_demo(DemoConfig(out=str(run)))
        assert not (run / "demo_config.json").exists()     # refused before writing anything
    with run_lock(run):                                    # released with its holder
        pass
