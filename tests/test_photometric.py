"""Photometric augmentation (determinism, batch independence, strength 0 = identity) and the
colour normalisation (invariant to a global colour cast; a checkpoint trained with it makes
predict apply it)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator import EstimatorConfig
from swiftavatar.estimator.checkpoint import load_estimator, make_payload, save_checkpoint
from swiftavatar.estimator.config import EstimatorTrainConfig
from swiftavatar.estimator.loop import EstimatorTrainer
from swiftavatar.estimator.model import prepare_images
from swiftavatar.estimator.photometric import normalize_colour, photometric_augment, row_seeds
from swiftavatar.estimator.predict import predict_images, predict_outputs
from swiftavatar.faces import face_images


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return face_images(0, range(6), 48)[0]


def test_strength_zero_is_the_identity(faces):
    x = prepare_images(torch.as_tensor(faces), 48)
    assert photometric_augment(x, 0.0, row_seeds(0, 0, faces)) is x


def test_augmentation_is_deterministic_per_seed_epoch_and_row(faces):
    x = prepare_images(torch.as_tensor(faces), 48)
    a = photometric_augment(x, 1.0, row_seeds(3, 1, faces))
    b = photometric_augment(x, 1.0, row_seeds(3, 1, faces))
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert (a - x).abs().mean() > 0.02                              # it does change the images
    # the same rows in another batch, in another order: the same change
    sub = faces[[4, 1]]
    c = photometric_augment(prepare_images(torch.as_tensor(sub), 48), 1.0, row_seeds(3, 1, sub))
    assert torch.equal(c[0], a[4]) and torch.equal(c[1], a[1])
    # another epoch or seed: another change
    assert not torch.equal(photometric_augment(x, 1.0, row_seeds(3, 2, faces)), a)
    assert not torch.equal(photometric_augment(x, 1.0, row_seeds(4, 1, faces)), a)
    # a weaker strength changes less
    weak = photometric_augment(x, 0.2, row_seeds(3, 1, faces))
    assert (weak - x).abs().mean() < (a - x).abs().mean()
    with pytest.raises(ValueError, match="seeds"):
        photometric_augment(x, 1.0, [1, 2])


def test_normalisation_removes_a_global_colour_cast(faces):
    x = torch.as_tensor(faces).permute(0, 3, 1, 2).float() / 255 * 0.7     # no clipping below
    for gains in ((1.2, 1.0, 0.75), (0.6, 0.7, 1.3), (1.4, 1.4, 1.4)):
        cast = x * torch.tensor(gains).view(1, 3, 1, 1)
        assert (normalize_colour(cast) - normalize_colour(x)).abs().max() < 1e-3
    assert (cast - x).abs().max() > 0.1
    n = normalize_colour(x)
    lum = (n * torch.tensor((0.2126, 0.7152, 0.0722)).view(1, 3, 1, 1)).sum(1)
    assert torch.allclose(lum.mean((1, 2)), torch.full((6,), 0.5), atol=1e-4)


def test_config_fields_default_off_and_validated():
    assert EstimatorTrainConfig(data="d", out="o").photometric == 0.0
    assert EstimatorConfig().color_norm == "none"
    assert "color_norm" not in EstimatorConfig().to_dict()          # old configs read the same
    assert "color_norm" not in EstimatorTrainConfig(data="d", out="o").to_dict()["model"]
    on = EstimatorConfig(color_norm="grayworld")
    assert EstimatorConfig.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match="color_norm"):
        EstimatorConfig(color_norm="lab").validate()
    with pytest.raises(ValueError, match="photometric"):
        EstimatorTrainConfig(data="d", out="o", photometric=-1.0).validate()


def test_a_checkpoint_trained_with_normalisation_makes_predict_apply_it(faces, tmp_path):
    schema = get_engine("toon").schema
    model_cfg = EstimatorConfig(input_size=32, head_hidden=16, pretrained=None,
                                color_norm="grayworld")
    cfg = EstimatorTrainConfig(data="d", out="o", model=model_cfg, batch=6, photometric=0.5)
    trainer = EstimatorTrainer(cfg, schema)
    batch = {"image": faces, "cont": np.full((6, len(schema.face_continuous)), 0.5, np.float32),
             "disc": np.zeros((6, len(schema.face_discrete)), np.int64)}
    for _ in range(2):
        m = trainer.train_step(batch)
    assert np.isfinite(m["loss"])
    d = tmp_path / "checkpoint_0000001"
    save_checkpoint(d, make_payload(model=trainer.model, optimizer=None, schema=schema,
                                    epoch=1, step=2, run_config=cfg.to_dict()))
    model, schema2, meta = load_estimator(d)
    assert model.config.color_norm == "grayworld"
    assert meta["model_args"]["config"]["color_norm"] == "grayworld"
    dim = (faces.astype(np.float32) * 0.7)
    cast = np.round(dim * np.array([1.25, 1.0, 0.7], np.float32)).astype(np.uint8)
    dim = np.round(dim).astype(np.uint8)
    a, b = predict_outputs(model, dim), predict_outputs(model, cast)
    assert (a["cont"] - b["cont"]).abs().max() < 0.02                # the cast is removed
    assert len(predict_images(model, schema2, cast)) == 6
    plain = EstimatorConfig(input_size=32, head_hidden=16, pretrained=None)
    torch.manual_seed(0)
    other = type(model)(plain, model.n_continuous, model.num_options)
    other.load_state_dict(model.state_dict())
    a, b = predict_outputs(other, dim), predict_outputs(other, cast)
    assert (a["cont"] - b["cont"]).abs().max() > 0.02 or any(
        (x - y).abs().max() > 0.05 for x, y in zip(a["logits"], b["logits"]))
