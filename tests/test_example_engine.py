"""The engine author's guide's example engine (docs/engines.md): in process, by 'module:Class',
over gRPC, through `render` (its default size), and through the whole main job, which has no
designer to score it against. Also `predict` for an engine that is not registered."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swiftavatar import semantics as sem
from swiftavatar.cli import build_parser, main as cli_main
from swiftavatar.engines.examples.pebble import SCHEMA, TARGET, PebbleEngine
from swiftavatar.engines.registry import UnknownEngineError, check_engine_spec, get_engine


def _vectors(n: int, seed: int = 0):
    engine = PebbleEngine()
    return engine.schema.sample(seed, range(n), engine.suggested_prior())


def test_renders_in_process_deterministically_with_masks():
    engine = PebbleEngine()
    batch = _vectors(6)
    out = engine.render(batch)                                  # default_size
    assert out.images.shape == (6, 128, 128, 3) and out.masks.shape == (6, 128, 128)
    again = engine.render(batch, 128)
    np.testing.assert_array_equal(out.images, again.images)
    np.testing.assert_array_equal(out.masks, again.masks)
    assert engine.schema.supports_masks and int(out.masks.max()) < sem.NUM_CLASSES
    # the face sits where the face domain puts it: eyes at 42% of the height, centred
    _, ys, xs = np.nonzero(out.masks == sem.EYES)
    assert abs(ys.mean() / 128 - 0.42) < 0.02 and abs(xs.mean() / 128 - 0.5) < 0.02
    # style parameters exist (the background), and every face parameter changes the pixels
    assert engine.schema.style_names == ["background"]
    base = engine.schema.default_vector()
    for p in (*engine.schema.continuous, *engine.schema.discrete):
        value = p.high if hasattr(p, "high") else p.options[(p.default + 1) % len(p.options)]
        moved = engine.schema.vector({**base.to_dict(), p.name: value})
        assert not np.array_equal(engine.render(moved.batch(), 64).images,
                                  engine.render(base.batch(), 64).images), p.name


def test_builds_by_module_class_and_over_grpc():
    from swiftavatar.engines.grpc_server import serve

    check_engine_spec(TARGET)
    engine = get_engine(TARGET)
    assert isinstance(engine, PebbleEngine) and engine.schema.fingerprint == SCHEMA.fingerprint
    batch = _vectors(4, seed=1)
    local = engine.render(batch, 48)
    server, port = serve(engine)
    try:
        with get_engine(f"grpc://127.0.0.1:{port}") as remote:
            assert remote.schema.fingerprint == SCHEMA.fingerprint
            assert remote.default_size == PebbleEngine.default_size
            got = remote.render(batch, 48)
    finally:
        server.stop(0).wait()
    np.testing.assert_array_equal(got.images, local.images)
    np.testing.assert_array_equal(got.masks, local.masks)


@pytest.mark.parametrize("spec, words", [
    ("nope", "unknown engine 'nope'"),
    ("no_such_module_xyz:Engine", "cannot import engine target"),
    ("grpc://nohost", "grpc://HOST:PORT"),
])
def test_spec_check_names_the_problem_without_building(spec, words):
    with pytest.raises(UnknownEngineError, match=words):
        check_engine_spec(spec)


@pytest.fixture(scope="module")
def pebble_estimator(tmp_path_factory):
    """An (untrained) estimator checkpoint on the pebble schema."""
    from swiftavatar.estimator import EstimatorConfig
    from swiftavatar.estimator.checkpoint import make_payload, save_checkpoint
    from swiftavatar.estimator.weights import build_estimator

    torch.manual_seed(0)
    model = build_estimator(EstimatorConfig(input_size=32, head_hidden=16, pretrained=None),
                            SCHEMA)
    d = tmp_path_factory.mktemp("est") / "checkpoint_0000001"
    save_checkpoint(d, make_payload(model=model, optimizer=None, schema=SCHEMA, epoch=1,
                                    step=1, run_config={"test": True}))
    return d


def _predict_args(model: Path, tmp_path: Path) -> list[str]:
    from PIL import Image

    from swiftavatar.faces import face_images

    images, _ = face_images(0, range(1), 64)
    face = tmp_path / "face.png"
    Image.fromarray(images[0]).save(face)
    return ["predict", str(face), "--model", str(model), "--out", str(tmp_path / "p"),
            "--align", "none", "--size", "32"]


def test_predict_names_engine_flag_for_an_unregistered_engine(pebble_estimator, tmp_path,
                                                              capsys):
    args = _predict_args(pebble_estimator, tmp_path)
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "unknown engine 'pebble'" in err and "pass --engine" in err
    assert not (tmp_path / "p").exists()
    assert cli_main(args + ["--engine", TARGET]) == 0
    row = json.loads((tmp_path / "p" / "face.json").read_text())
    assert row["engine"] == "pebble" and set(row["vector"]) == set(SCHEMA.param_names)


@pytest.mark.ray
@pytest.mark.timeout(120)
@pytest.mark.slow
def test_render_size_defaults_to_the_engines_and_resumes(ray_local, tmp_path, capsys):
    out = tmp_path / "ds"
    base = ["render", "--engine", TARGET, "--out", str(out), "--count", "4", "--workers", "1",
            "--no-progress"]
    assert cli_main(base) == 0
    manifest = json.loads((out / "render_config.json").read_text())
    assert manifest["dataset"]["size"] == PebbleEngine.default_size
    assert cli_main(base + ["--size", str(PebbleEngine.default_size)]) == 0   # the same data
    assert "0 written by this run" in capsys.readouterr().out
    assert cli_main(base + ["--size", "64"]) == 2
    assert "size 128 -> 64" in capsys.readouterr().err


def test_demo_takes_any_engine_spec(capsys):
    from swiftavatar.cli.demo_cmd import resolve

    args = build_parser().parse_args(["demo", "--quick", "--engines", f"toon,{TARGET}"])
    cfg = resolve(args)
    assert [r.engine for r in cfg.engines] == ["toon", TARGET]
    assert [p.engine for p in cfg.produce] == ["toon", TARGET]
    (toon, pebble) = cfg.produce
    assert dataclasses.replace(pebble, engine="toon") == toon     # made like the preset's
    assert pebble.needs_finetune() and not toon.needs_finetune()   # no shipped G_avatar
    assert cli_main(["demo", "--engines", f"{TARGET},{TARGET}", "--dry-run"]) == 2
    assert "named twice" in capsys.readouterr().err
    assert cli_main(["demo", "--engines", TARGET, "--finetune", "never", "--dry-run"]) == 2
    assert "has no shipped G_avatar" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_the_example_engine_end_to_end(ray_local, tmp_path, capsys):
    """`demo --engines module:Class` at tiny scale: render, G_avatar finetune, produce, the
    three estimators, and a report without designer rows that says why."""
    from actors.demo_engines import with_engines
    from actors.main_job import DemoConfig, EngineRun, EstimateConfig, ProduceRun, run_demo
    from swiftavatar.estimator import EstimatorConfig, EstimatorTrainConfig

    tiny = DemoConfig(
        out=str(tmp_path / "run"), shard_size=16, preset="test",
        engines=(EngineRun("toon", 32, 64),),
        produce=(ProduceRun("toon", 3, steps=2, augmentations=1, n_mean=64, finetune_steps=2,
                            finetune_batch=4),),
        produce_shard_size=2,
        estimate=EstimateConfig(images_seen=24, eval_count=3, eval_size=32,
                                estimator=EstimatorTrainConfig.embedded(
                                    model=EstimatorConfig(input_size=32, head_hidden=16,
                                                          pretrained=None),
                                    batch=8, num_workers=1, val_fraction=0.0,
                                    cpus_per_worker=0.5, progress=False)))
    cfg = with_engines(tiny, [TARGET])
    report = run_demo(cfg)
    run = tmp_path / "run"
    assert [(r["engine"], r["spec"], r["rendered"]) for r in report["render"]] == \
        [("pebble", TARGET, 32)]
    (tuned,) = report["finetune"]
    assert (tuned["engine"], tuned["step"]) == ("pebble", 2)
    assert (run / "generators" / "pebble").is_dir()
    (made,) = report["produce"]
    assert (made["engine"], made["samples"], made["pairs"]) == ("pebble", 3, 6)
    saved = json.loads((run / "report.json").read_text())
    assert [(r["method"], r["eval_set"]) for r in saved["evaluation"]] == \
        [("Baseline on engine renders", "engine renders")]
    assert "no designer" in saved["no_designer"]["pebble"]
    html = (run / "report" / "report.html").read_text()
    assert "no designer exists for it" in html and "data:image/png;base64" in html
    # predict with the trained estimator: the engine is not registered, so --engine is needed
    model = run / "estimators" / "pebble" / "semantic_augmentation"
    args = _predict_args(model, tmp_path)
    assert cli_main(args) == 2 and "pass --engine" in capsys.readouterr().err
    assert cli_main(args + ["--engine", TARGET]) == 0


DESIGNER_CODE = '''
from swiftavatar.engines.schema import VectorBatch


def design(attrs, schema):
    """Every face gets the engine's default vector."""
    return VectorBatch.stack([schema.default_vector() for _ in attrs])
'''


def test_a_designer_declared_by_an_entry_point_is_found(tmp_path, monkeypatch):
    from swiftavatar.evaluation import available_designers, design, has_designer
    from swiftavatar.evaluation.designer import ENTRY_POINT_GROUP
    from swiftavatar.faces import render_faces

    assert not has_designer("pebble")
    (tmp_path / "pebble_designer.py").write_text(DESIGNER_CODE)
    info = tmp_path / "pebble_designer-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pebble-designer\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n"
                                           f"pebble = pebble_designer:design\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert has_designer("pebble") and "pebble" in available_designers()
        vectors = design(render_faces(0, range(2), 32).attributes, SCHEMA)
        assert len(vectors) == 2 and vectors[0] == SCHEMA.default_vector()
    finally:
        import sys

        sys.modules.pop("pebble_designer", None)
