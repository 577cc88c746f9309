"""Shipped estimators: the float16 release format, `pretrained:` names for estimators beside the
generators', the release script, and (when the package holds them) the shipped files."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import swiftavatar.pretrained as pretrained
from swiftavatar.checkset.records import load_records
from swiftavatar.cli import main as cli_main
from swiftavatar.engines.registry import get_engine
from swiftavatar.engines.schema import AvatarVector
from swiftavatar.estimator import EstimatorConfig
from swiftavatar.estimator.checkpoint import (EstimatorCheckpointError, find_checkpoint,
                                              load_estimator, make_payload, read_checkpoint,
                                              save_checkpoint)
from swiftavatar.estimator.predict import predict_images
from swiftavatar.estimator.release import compare_release, release_estimator
from swiftavatar.estimator.weights import build_estimator
from swiftavatar.selfies import load_face_image, resize_square
from swiftavatar.training.checkpoint import CheckpointError
from swiftavatar.training.checkpoint import find_checkpoint as find_generator

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "release_estimators.py"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A main-job run directory with a (tiny, untrained) toon `semantic_augmentation` run."""
    schema = get_engine("toon").schema
    torch.manual_seed(3)
    model = build_estimator(EstimatorConfig(input_size=32, head_hidden=16, pretrained=None),
                            schema)
    opt = torch.optim.Adam(model.parameters())
    run = tmp_path_factory.mktemp("demo_run")
    save_checkpoint(run / "estimators" / "toon" / "semantic_augmentation" / "train"
                    / "checkpoint_00002",
                    make_payload(model=model, optimizer=opt, schema=schema, epoch=2, step=7,
                                 run_config={"lr": 1e-3}, metrics={"loss": 1.5}))
    return run


@pytest.fixture()
def photos() -> np.ndarray:
    """The check-set photos, centre-cropped (predict --align none)."""
    return np.stack([resize_square(load_face_image(str(r.path)), 64) for r in load_records()])


def test_a_release_is_float16_without_optimiser_and_predicts_like_its_checkpoint(
        run_dir, photos, tmp_path):
    src = run_dir / "estimators" / "toon" / "semantic_augmentation"
    info = release_estimator(src, tmp_path / "est.pt")
    assert info["bytes"] == (tmp_path / "est.pt").stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["est.pt"]          # no temp file left
    full, rel = read_checkpoint(src), read_checkpoint(tmp_path / "est.pt")
    assert rel["optimizer"] is None and full["optimizer"] is not None
    assert all(v.dtype == torch.float16 for v in rel["model"].values() if v.is_floating_point())
    for key in ("model_args", "engine_schema", "schema_fingerprint", "backbone_info",
                "run_config", "metrics", "epoch", "step"):
        assert rel[key] == full[key], key
    assert rel["release"] == {"dtype": "float16", "source": full["path"], "epoch": 2, "step": 7}
    model, schema, meta = load_estimator(tmp_path / "est.pt")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert meta["release"]["dtype"] == "float16"
    for vec in predict_images(model, schema, photos):
        AvatarVector.from_dict(schema, vec.to_dict())
    diff = compare_release(src, tmp_path / "est.pt", photos)
    assert diff["faces"] == len(photos) and diff["options_identical"]
    assert diff["max_abs_cont"] < 1e-2 and diff["max_abs_prob"] < 1e-2


def test_pretrained_names_resolve_by_kind_and_a_missing_file_says_what_to_do(
        run_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(pretrained, "_DIR", tmp_path)                # an install without them
    with pytest.raises(EstimatorCheckpointError, match="run the main job.*pass a checkpoint"):
        find_checkpoint("pretrained:toon")
    assert cli_main(["predict", str(load_records()[0].path), "--model", "pretrained:toon",
                     "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "estimator_toon_64.pt" in err
    # a generator's name is not an estimator's, nor the other way round
    with pytest.raises(EstimatorCheckpointError, match="no shipped estimator 'g_real_64'"):
        find_checkpoint("pretrained:g_real_64")
    with pytest.raises(CheckpointError, match="no shipped generator 'toon'"):
        find_generator("pretrained:toon")
    release_estimator(run_dir / "estimators" / "toon" / "semantic_augmentation",
                      tmp_path / pretrained.estimator_file_name("toon", 64))
    for name in ("pretrained:toon", "pretrained:estimator_toon_64"):
        assert find_checkpoint(name) == tmp_path / "estimator_toon_64.pt"
    assert load_estimator("pretrained:toon")[2]["release"]["dtype"] == "float16"


def test_predict_and_check_photos_take_a_pretrained_name(run_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(pretrained, "_DIR", tmp_path)
    release_estimator(run_dir / "estimators" / "toon" / "semantic_augmentation",
                      tmp_path / "estimator_toon_64.pt")
    photo = str(load_records()[0].path)
    assert cli_main(["predict", photo, "--model", "pretrained:toon", "--align", "none",
                     "--size", "32", "--out", str(tmp_path / "p")]) == 0
    row = json.loads(capsys.readouterr().out)
    AvatarVector.from_dict(get_engine("toon").schema, row["vector"])
    assert row["model"] == str(tmp_path / "estimator_toon_64.pt")
    assert cli_main(["check-photos", "--model", "pretrained:toon", "--align", "none",
                     "--size", "32", "--out", str(tmp_path / "c")]) == 0
    done = json.loads((tmp_path / "c" / "check_photos.json").read_text())
    assert done["model"] == "pretrained:toon" and len(done["photos"]) == len(load_records())


def _script():
    spec = importlib.util.spec_from_file_location("release_estimators", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_release_script_writes_each_engine_and_reports_the_difference(run_dir, tmp_path,
                                                                      capsys):
    script = _script()
    assert script.main([str(run_dir), "--dest", str(tmp_path), "--faces", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"toon: {tmp_path / 'estimator_toon_32.pt'} ")
    assert f"on {2 + len(load_records())} faces" in line and "decoded options identical: True" in line
    assert read_checkpoint(tmp_path / "estimator_toon_32.pt")["release"]["epoch"] == 2
    assert script.main([str(tmp_path), "--dest", str(tmp_path)]) == 2
    assert "pass a main-job run directory" in capsys.readouterr().err
    assert script.main([str(run_dir), "--engines", "avataaars", "--dest", str(tmp_path)]) == 2


SHIPPED = [n for n in ("toon", "avataaars")
           if (pretrained.release_dir()
               / pretrained.RELEASES[pretrained.ALIASES[n]].file).is_file()]


@pytest.mark.skipif(len(SHIPPED) < 2, reason="the shipped estimator files are not in this tree")
@pytest.mark.parametrize("engine", ["toon", "avataaars"])
def test_shipped_estimators_load_and_predict_valid_vectors_on_the_check_set(engine):
    model, schema, meta = load_estimator(f"pretrained:{engine}")
    assert schema.engine == engine and meta["release"]["dtype"] == "float16"
    records = load_records()
    images = np.stack([resize_square(load_face_image(str(r.path)), model.config.input_size)
                       for r in records])
    vectors = predict_images(model, schema, images)
    assert len(vectors) == len(records)
    for vec in vectors:
        AvatarVector.from_dict(schema, vec.to_dict())
