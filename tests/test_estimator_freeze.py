"""`freeze_trunk`: the estimator trains its heads on the trunk's frozen features (weights and
BatchNorm statistics), and the config refuses it without trunk weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator import EstimatorConfig
from swiftavatar.estimator.config import EstimatorTrainConfig
from swiftavatar.estimator.loop import EstimatorTrainer
from swiftavatar.faces import face_images


def _batch(schema, n=6):
    rng = np.random.default_rng(0)
    return {"image": face_images(0, range(n), 32)[0],
            "cont": rng.uniform(0, 1, (n, len(schema.face_continuous))).astype(np.float32),
            "disc": np.zeros((n, len(schema.face_discrete)), np.int64)}


@pytest.mark.parametrize("freeze", [True, False])
def test_a_frozen_trunk_keeps_its_weights_and_statistics_and_the_heads_learn(freeze):
    schema = get_engine("toon").schema
    model_cfg = EstimatorConfig(input_size=32, backbone="resnet18", head_hidden=16,
                                pretrained="auto")
    cfg = EstimatorTrainConfig(data="d", out="o", model=model_cfg, batch=6,
                               freeze_trunk=freeze)
    trainer = EstimatorTrainer(cfg, schema)
    trunk0 = {k: v.clone() for k, v in trainer.model.trunk.state_dict().items()}
    heads0 = {k: v.clone() for k, v in trainer.model.heads.state_dict().items()}
    batch = _batch(schema)
    losses = [trainer.train_step(batch)["loss"] for _ in range(4)]
    trunk1 = trainer.model.trunk.state_dict()
    same = [torch.equal(trunk0[k], trunk1[k]) for k in trunk0]
    assert all(same) if freeze else not all(same)   # weights and running BN statistics
    assert any(not torch.equal(v, trainer.model.heads.state_dict()[k])
               for k, v in heads0.items())
    assert losses[-1] < losses[0]
    n_opt = sum(p.numel() for g in trainer.opt.param_groups for p in g["params"])
    n_heads = sum(p.numel() for p in trainer.model.heads.parameters())
    assert (n_opt == n_heads) if freeze else (n_opt > n_heads)


def test_freezing_a_trunk_without_weights_is_refused():
    cfg = EstimatorTrainConfig(data="d", out="o", freeze_trunk=True,
                               model=EstimatorConfig(pretrained=None))
    with pytest.raises(ValueError, match="freeze_trunk needs trunk weights"):
        cfg.validate()
