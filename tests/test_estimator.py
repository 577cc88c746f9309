"""The avatar estimator (section 3.3, Eq. 8): losses against hand-computed values, overfitting a
tiny set, always-valid predictions, trunk weights, checkpoints and resume, the data layouts, and
a 2-worker Ray Train run that resumes. Data: toon-engine renders at 32 px, written as a real
pairs dataset (the produce stage's Arrow schema) and as a real rendered dataset (the rendering
stage's own code). One torch thread: on a busy 2-core machine two threads stall."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from swiftavatar.engines.schema import DiscreteParam, EngineSchema, InvalidVectorError, row_errors
from swiftavatar.estimator import losses
from swiftavatar.estimator.checkpoint import (list_checkpoints, load_estimator, read_checkpoint,
                                              release_payload, save_checkpoint)
from swiftavatar.estimator.config import EstimatorTrainConfig
from swiftavatar.estimator.data import (EstimatorDataError, RowFilter, count_rows, load_arrays,
                                        open_source)
from swiftavatar.estimator.local import RunMismatchError, fit_in_process
from swiftavatar.estimator.loop import EstimatorTrainer
from swiftavatar.estimator.model import (AvatarEstimator, EstimatorConfig, decode, head_layout,
                                         optimize_for_inference)
from swiftavatar.estimator.predict import predict_images, predict_outputs
from swiftavatar.estimator.weights import TORCHVISION_FILES, load_backbone
from synthetic import write_toon_pairs, write_toon_renders

SIZE = 32
TINY = EstimatorConfig(input_size=SIZE, head_hidden=128, pretrained=None)
A = 2  # augmented rows per sample


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_pairs(out: Path, n: int = 16, shard_size: int = 8, seed: int = 0) -> Path:
    """A pairs dataset in the produce stage's layout, A augmented rows per sample."""
    return write_toon_pairs(out, n, shard_size, A, seed=seed, size=SIZE)


def render_dataset(out: Path, count: int = 12) -> Path:
    """A rendered toon dataset written by the rendering stage's own code."""
    return write_toon_renders(out, count, seed=3, size=SIZE, shard_size=8)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("est") / "pairs")


def tiny_cfg(data, out, **kw) -> EstimatorTrainConfig:
    base = dict(data=str(data), out=str(out), model=TINY, epochs=1, batch=8, progress=False)
    return EstimatorTrainConfig(**{**base, **kw})


# ---- Eq. 8 ------------------------------------------------------------------------------
def test_losses_match_hand_computed_values():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    target = torch.tensor([0, 1])
    p = [math.exp(2) / (math.exp(2) + 1 + math.exp(-1)),
         math.exp(0.5) / (2 * math.exp(0.5) + math.exp(3))]
    ce = -(math.log(p[0]) + math.log(p[1])) / 2
    rce = (4 * (1 - p[0]) + 4 * (1 - p[1])) / 2            # -A (1 - p_y), A = -4
    assert losses.reverse_cross_entropy(logits, target).item() == pytest.approx(rce, rel=1e-6)
    sce = losses.symmetric_cross_entropy(logits, target, alpha=0.1, beta=1.0)
    assert sce.item() == pytest.approx(0.1 * ce + rce, rel=1e-6)
    assert losses.symmetric_cross_entropy(logits, target, 1.0, 0.0).item() == pytest.approx(ce)
    assert losses.reverse_cross_entropy(logits, target, log_zero=-2).item() == pytest.approx(
        rce / 2, rel=1e-6)
    pred, tgt = torch.tensor([[0.2, 0.9]]), torch.tensor([[0.5, 0.5]])
    assert losses.continuous_l1(pred, tgt).item() == pytest.approx(0.35)
    total, parts = losses.estimator_loss({"cont": pred.expand(2, 2), "logits": [logits, logits]},
                                         tgt.expand(2, 2), torch.stack([target, target], 1))
    assert parts["loss_d"].item() == pytest.approx(2 * (0.1 * ce + rce), rel=1e-6)
    assert total.item() == pytest.approx(1.0 * 0.35 + 10.0 * 2 * (0.1 * ce + rce), rel=1e-6)
    only_d, _ = losses.estimator_loss({"cont": torch.zeros(2, 0), "logits": [logits]},
                                      torch.zeros(2, 0), target[:, None])
    assert only_d.item() == pytest.approx(10.0 * (0.1 * ce + rce), rel=1e-6)


def test_configs_validate_and_round_trip():
    paper = EstimatorTrainConfig(data="d", out="o").validate()
    assert (paper.batch, paper.epochs, paper.lr, paper.lambda_c, paper.lambda_d) == (
        256, 100, 1e-3, 1.0, 10.0)
    assert paper.model.input_size == 224 and paper.model.backbone == "resnet18"
    assert [paper.lr_at(e) for e in (0, 29, 30, 60, 99)] == [1e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4]
    emb = EstimatorTrainConfig.embedded(data="d", out="o").validate()
    assert emb.model.input_size == 64 and emb.worker_batch * emb.num_workers == emb.batch
    assert EstimatorTrainConfig.from_dict(json.loads(emb.to_json())) == emb
    with pytest.raises(ValueError, match="batch must be"):
        EstimatorTrainConfig(data="d", out="o", batch=9, num_workers=2).validate()
    with pytest.raises(ValueError, match="shift_px"):
        EstimatorTrainConfig.embedded(data="d", out="o", shift_px=40).validate()
    with pytest.raises(ValueError, match="backbone"):
        EstimatorConfig(backbone="vit").validate()
    with pytest.raises(ValueError, match="unknown"):
        EstimatorTrainConfig.from_dict({"data": "d", "lr_decay": 0.1})


# ---- training ---------------------------------------------------------------------------
def test_overfits_a_tiny_set(pairs, tmp_path):
    data = load_arrays(str(pairs), RowFilter("all", augmented=False))
    assert len(data) == 16 and data.images.shape == (16, SIZE, SIZE, 3)
    trainer = EstimatorTrainer(tiny_cfg(pairs, tmp_path, batch=16), data.schema)
    batch = data.batch(np.arange(16))
    before = trainer.evaluate([batch])
    first = trainer.train_step(batch)
    for _ in range(19):
        last = trainer.train_step(batch)
    after = trainer.evaluate([batch])
    assert last["loss"] < first["loss"] / 20
    assert before["val_acc"] < 0.6 and after["val_acc"] >= 0.95
    assert last["loss_c"] < first["loss_c"] / 4
    assert after["val_l1"] < before["val_l1"] / 2         # in eval mode too
    assert trainer.step == 20


def test_predictions_always_decode_to_valid_vectors(pairs):
    schema = open_source(str(pairs)).schema
    torch.manual_seed(0)
    model = AvatarEstimator.for_schema(TINY, schema)
    rng = np.random.default_rng(0)
    garbage = [rng.integers(0, 256, (5, 40, 24, 3), dtype=np.uint8),   # noise, not square
               np.zeros((2, SIZE, SIZE, 3), np.uint8), np.full((1, 8, 8, 3), 255, np.uint8)]
    for images in garbage:
        vec = predict_images(model, schema, images)
        assert len(vec) == len(images)
        assert row_errors(schema, vec.continuous, vec.discrete) == [""] * len(images)
    assert model.training                                 # the caller's mode is kept
    n = 3
    wild = {"cont": torch.tensor([[-5.0] * 18, [7.0] * 18, [0.5] * 18]),
            "logits": [torch.randn(n, k) * 1e6 for k in head_layout(schema)[1]]}
    vec = decode(wild, schema)
    assert row_errors(schema, vec.continuous, vec.discrete) == [""] * n
    np.testing.assert_allclose(vec.continuous[0], [p.low for p in schema.continuous])
    np.testing.assert_allclose(vec.continuous[1], [p.high for p in schema.continuous])
    wild["cont"][2, 4] = float("nan")
    with pytest.raises(InvalidVectorError, match="eye_size"):
        decode(wild, schema)
    with pytest.raises(ValueError, match="uint8"):
        predict_images(model, schema, np.zeros((1, SIZE, SIZE, 3), np.float32))
    model.train()
    for _ in range(2):                                    # BatchNorm statistics away from 0/1
        model(torch.rand(8, 3, SIZE, SIZE) * 2 - 1)
    fast = optimize_for_inference(model)
    images = garbage[0]
    slow_out, fast_out = predict_outputs(model, images), predict_outputs(fast, images)
    torch.testing.assert_close(fast_out["cont"], slow_out["cont"], atol=1e-5, rtol=0)
    for a, b in zip(fast_out["logits"], slow_out["logits"]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    # an engine with discrete parameters only (like the paper's Alter): no continuous head
    alter = EngineSchema("alter", "1", (), (DiscreteParam("hair", ("a", "b", "c")),
                                           DiscreteParam("eyes", ("x", "y"))))
    only_d = AvatarEstimator.for_schema(TINY, alter)
    assert only_d.heads.outs == (3, 2)
    vec = predict_images(only_d, alter, garbage[0])
    assert vec.continuous.shape == (5, 0) and row_errors(alter, vec.continuous,
                                                         vec.discrete) == [""] * 5
    loss, parts = losses.estimator_loss(only_d(torch.zeros(2, 3, SIZE, SIZE)),
                                        torch.zeros(2, 0), torch.tensor([[0, 1], [2, 0]]))
    assert parts["loss_c"].item() == 0.0 and loss.item() > 0


def test_trunk_weights_are_found_offline_and_recorded(tmp_path):
    import torchvision

    torch.manual_seed(1)
    ref = torchvision.models.resnet18(weights=None).state_dict()
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(ref, hub / "checkpoints" / TORCHVISION_FILES["resnet18"])
    model = AvatarEstimator(dataclasses.replace(TINY, pretrained="auto"), 2, [3])
    info = load_backbone(model, hub_dir=hub)
    assert info["kind"] == "unverified-file" and info["path"].endswith("resnet18-f37072fd.pth")
    assert torch.equal(model.trunk.conv1.weight, ref["conv1.weight"])
    assert model.backbone_info == info
    empty = tmp_path / "empty"
    assert load_backbone(model, hub_dir=empty)["kind"] == "random"   # no cache: from scratch
    with pytest.raises(FileNotFoundError, match="do not exist"):
        load_backbone(model, str(tmp_path / "missing.pth"))
    bad = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="does not fit"):
        load_backbone(model, str(bad))


def test_fit_in_process_checkpoints_round_trip_and_resume(pairs, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_cfg(pairs, out, val_fraction=0.25, augmented=True)
    trainer, history = fit_in_process(cfg)
    assert [h["epoch"] for h in history] == [1] and "val_acc" in history[0]
    assert sorted(list_checkpoints(out)) == [1]
    model, schema, meta = load_estimator(out)
    assert meta["epoch"] == 1 and meta["step"] == trainer.step > 0
    assert meta["run_config"]["out"] == str(out) and meta["backbone_info"]["kind"] == "random"
    assert meta["data"]["kind"] == "pairs" and meta["data"]["image_column"] == "realistic_png"
    assert meta["data"]["rows_train"] + meta["data"]["rows_val"] * (1 + A) == 48
    images = load_arrays(str(pairs), limit=6).images
    a = predict_images(model, schema, images)
    b = predict_images(trainer.model, schema, images)
    np.testing.assert_array_equal(a.discrete, b.discrete)
    np.testing.assert_allclose(a.continuous, b.continuous, rtol=0, atol=1e-6)

    release = tmp_path / "release"
    save_checkpoint(release, release_payload(read_checkpoint(out)))
    small, _, rmeta = load_estimator(release)
    assert rmeta["release"] == {"dtype": "float16"} and rmeta["epoch"] == 1
    c = predict_images(small, schema, images)
    np.testing.assert_allclose(c.normalized_continuous(), a.normalized_continuous(), atol=0.02)
    assert (release / "checkpoint.pt").stat().st_size < 0.2 * (
        list_checkpoints(out)[1] / "checkpoint.pt").stat().st_size

    _, more = fit_in_process(dataclasses.replace(cfg, epochs=2))      # same out: resumes
    assert [h["epoch"] for h in more] == [2] and more[0]["start_epoch"] == 1
    assert json.loads((out / "summary.json").read_text())["epoch"] == 2
    with pytest.raises(RunMismatchError, match="seed"):
        fit_in_process(dataclasses.replace(cfg, epochs=3, seed=1))


def test_a_validation_hook_scores_every_epoch_into_reports_and_checkpoints(pairs, tmp_path):
    """A sweep trial's only addition to the estimator's loop (tune.validation.TrialValidation):
    run_epochs scores the plain model without gradients after each epoch, and its metrics go
    into that epoch's report and checkpoint."""
    from swiftavatar.estimator.data import memory_batches
    from swiftavatar.estimator.loop import run_epochs

    data = load_arrays(str(pairs), RowFilter("train", augmented=False))
    cfg = tiny_cfg(pairs, tmp_path, epochs=2)
    trainer = EstimatorTrainer(cfg, data.schema)
    calls, reports = [], []

    def validate(model):
        calls.append((torch.is_grad_enabled(), model is trainer.model))
        return {"val_lpips": 0.5 + len(calls)}

    def report(metrics, checkpoint_dir, epoch):
        saved = read_checkpoint(checkpoint_dir)["metrics"] if checkpoint_dir else None
        reports.append((epoch, dict(metrics), saved))

    epochs = memory_batches(data, cfg.batch, cfg.seed)
    run_epochs(trainer, lambda epoch: next(epochs), None, report=report, validate=validate)
    assert calls == [(False, True)] * 2
    assert [(e, m["val_lpips"]) for e, m, _ in reports] == [(1, 1.5), (2, 2.5)]
    assert [s["val_lpips"] for _, _, s in reports] == [1.5, 2.5]     # checkpoint_every 1


def test_rows_splits_and_layouts(pairs, tmp_path):
    src = open_source(str(pairs))
    assert src.kind == "pairs" and src.image_size() == SIZE
    clean = load_arrays(str(pairs), RowFilter("all", augmented=False))
    assert len(clean) == 16
    train = RowFilter("train", True, 0.3)
    val = RowFilter("val", True, 0.3)
    n_train, n_val = count_rows(src, train), count_rows(src, val)
    assert n_val >= 1 and n_train + n_val * (1 + A) == 48
    assert count_rows(src, RowFilter("train", False, 0.3)) == n_train // (1 + A)
    avatars = load_arrays(str(pairs), RowFilter("all", False), image_column="avatar_png")
    realistic = load_arrays(str(pairs)).images                # (48, S, S, 3): 3 rows a sample
    np.testing.assert_array_equal(avatars.images, realistic[::1 + A])   # aug 0: no colour cast
    assert not np.array_equal(avatars.images, realistic[1::1 + A])
    np.testing.assert_array_equal(avatars.disc, clean.disc)
    with pytest.raises(EstimatorDataError, match="image_png"):
        load_arrays(str(pairs), image_column="image_png")
    renders = render_dataset(tmp_path / "renders")
    rsrc = open_source(str(renders))
    assert rsrc.kind == "render" and rsrc.image_column(None) == "image_png"
    rows = load_arrays(str(renders))
    assert rows.images.shape == (12, SIZE, SIZE, 3) and rows.disc.shape == (12, 14)  # face parameters
    assert 0.0 <= rows.cont.min() and rows.cont.max() <= 1.0
    with pytest.raises(EstimatorDataError, match="neither"):
        open_source(str(tmp_path))


# ---- Ray Train ---------------------------------------------------------------------------
@pytest.mark.ray
@pytest.mark.timeout(240)
@pytest.mark.slow
def test_ray_train_two_workers_checkpoint_and_resume(ray_local, pairs, tmp_path):
    from actors.train_estimator import run_estimator_training

    cfg = tiny_cfg(pairs, tmp_path / "ray", num_workers=2, cpus_per_worker=0.5,
                   val_fraction=0.25, torch_threads=1)
    first = run_estimator_training(cfg)
    assert first["epoch"] == 1 and first["metrics"]["epoch"] == 1
    assert "val_acc" in first["metrics"] and first["data"]["kind"] == "pairs"
    assert sorted(list_checkpoints(cfg.out)) == [1]
    again = run_estimator_training(dataclasses.replace(cfg, epochs=2))
    assert again["epoch"] == 2 and again["metrics"]["start_epoch"] == 1
    assert again["step"] == 2 * first["step"]
    model, schema, meta = load_estimator(cfg.out)
    assert meta["epoch"] == 2 and meta["run_config"]["num_workers"] == 2
    vec = predict_images(model, schema, load_arrays(str(pairs), limit=4).images)
    assert row_errors(schema, vec.continuous, vec.discrete) == [""] * 4
    _, local = fit_in_process(dataclasses.replace(cfg, epochs=3))     # the same run directory
    assert [h["start_epoch"] for h in local] == [2]
    assert sorted(list_checkpoints(cfg.out))[-1] == 3
