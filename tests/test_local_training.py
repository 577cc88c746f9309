"""Ray-free generator training (swiftavatar.training.local) and the shipped generators."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from swiftavatar.semantics import CLASSES
from swiftavatar.training.checkpoint import (CheckpointError, list_checkpoints, load_generator,
                                             read_checkpoint, release_payload)
from swiftavatar.training.local import memory_batches, train_in_process
from tests.test_gan_training import tiny_config


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def faces(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    from swiftavatar.faces import face_images

    return face_images(0, range(n), 32)              # (n, 32, 32, 3), (n, 32, 32) uint8


def test_memory_batches_cover_each_epoch_once_and_check_shapes():
    images = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2)
    images = images.repeat(3, 3)                      # (10, 2, 2, 3), image i filled with i
    it = memory_batches(images, None, batch=5, seed=3, device="cpu")
    first = torch.cat([next(it)["image"][:, 0, 0, 0] for _ in range(2)])
    assert sorted(first.tolist()) == list(range(10))  # one epoch = every image once
    again = memory_batches(images, None, batch=5, seed=3, device="cpu")
    assert torch.equal(next(again)["image"][:, 0, 0, 0], first[:5])  # same seed, same order
    with pytest.raises(ValueError, match="cannot fill one batch"):
        next(memory_batches(images, None, batch=11, seed=0, device="cpu"))
    with pytest.raises(ValueError, match="masks must be"):
        next(memory_batches(images, np.zeros((10, 3, 3), np.uint8), 5, 0, "cpu"))


def test_in_process_run_checkpoints_resumes_and_keeps_the_run_identity(tmp_path):
    images, masks = faces()
    cfg = tiny_config(tmp_path / "run", steps=3, checkpoint_every=2, sample_every=0,
                      keep_checkpoints=1)
    trainer, history = train_in_process(cfg, images, masks)
    assert trainer.step == 3 and list(list_checkpoints(cfg.out)) == [3]  # step 2 pruned
    assert [h["step"] for h in history] == [2, 3]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 3
    more = tiny_config(tmp_path / "run", steps=5, checkpoint_every=2, sample_every=0,
                       keep_checkpoints=1)
    trainer, history = train_in_process(more, images, masks)
    assert trainer.step == 5 and [h["start_step"] for h in history] == [3, 3]
    assert read_checkpoint(tmp_path / "run")["images_seen"] == 5 * 4
    with pytest.raises(ValueError, match="holds a different run"):
        train_in_process(tiny_config(tmp_path / "run", seed=1), images, masks)


def test_time_limit_stops_with_a_checkpoint_at_the_step_reached(tmp_path):
    images, masks = faces()
    cfg = tiny_config(tmp_path / "run", steps=10_000, checkpoint_every=1000, sample_every=0)
    trainer, history = train_in_process(cfg, images, masks, time_limit_s=0.0)
    assert trainer.step < 10_000
    assert list(list_checkpoints(cfg.out)) == [trainer.step]
    assert history[-1]["stopped"] == "time limit"


def test_release_is_half_precision_without_optimisers_and_loads(tmp_path):
    images, masks = faces()
    cfg = tiny_config(tmp_path / "run", steps=1, sample_every=0)
    train_in_process(cfg, images, masks)
    full = read_checkpoint(tmp_path / "run")
    rel = release_payload(full)
    assert "g_optim" not in rel and "g" not in rel and "d" in rel
    assert all(t.dtype == torch.float16 for t in rel["g_ema"].values() if t.is_floating_point())
    torch.save(rel, tmp_path / "rel.pt")
    g, meta = load_generator(tmp_path / "rel.pt")
    g_full, _ = load_generator(tmp_path / "run")
    z = torch.randn(2, g.config.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = g(z, noise="const")[0], g_full(z, noise="const")[0]
    assert meta["step"] == 1 and (a - b).abs().max() < 0.05   # float16 rounding only


def test_a_release_names_no_path_of_the_machine(tmp_path, monkeypatch):
    """A release's run config: a shipped file becomes `pretrained:NAME`, a path under the
    working directory becomes relative; the checkpoint being released is left as it was."""
    from swiftavatar.pretrained import pretrained_path

    monkeypatch.chdir(tmp_path)
    payload = {"format": "x", "g_ema": {}, "run_config": {
        "out": str(tmp_path / "runs" / "gens" / "toon"), "init": str(pretrained_path("g_real_64")),
        "data": [str(tmp_path / "renders"), "s3://bucket/renders"], "steps": 5}}
    rel = release_payload(payload)
    assert rel["run_config"] == {"out": "runs/gens/toon", "init": "pretrained:g_real_64",
                                 "data": ["renders", "s3://bucket/renders"], "steps": 5}
    assert payload["run_config"]["out"] == str(tmp_path / "runs" / "gens" / "toon")


@pytest.mark.parametrize("name,domain", [("g_real_64", "real"), ("g_avatar_toon_64", "avatar"),
                                         ("g_avatar_avataaars_64", "avatar")])
def test_shipped_generators_load_and_draw_heads(name, domain):
    g, meta = load_generator(f"pretrained:{name}")
    assert meta["domain"] == domain and meta["step"] >= 500 and meta["w_mean"].shape == (1, 256)
    z = torch.randn(8, g.config.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img, seg = g(z, noise="const")                # (8, 3, 64, 64), (8, 13, 64, 64)
    assert img.shape == (8, 3, 64, 64) and seg.shape == (8, 13, 64, 64)
    classes = seg.argmax(1)
    skin = (classes == CLASSES.index("skin")).float().mean((1, 2))
    background = (classes == CLASSES.index("background")).float().mean((1, 2))
    # a trained generator draws a face in the middle of every sample: skin covers a good part
    # of the image and the corners are background (an untrained one gives noise masks)
    assert (skin > 0.03).all() and skin.mean() > 0.08, skin
    assert (classes[:, :4, :4] == CLASSES.index("background")).float().mean() > 0.8
    assert (background > 0.2).all()
    with pytest.raises(CheckpointError, match="no shipped generator"):
        load_generator("pretrained:g_nope")


@pytest.mark.parametrize("name", ["g_avatar_toon_64", "g_avatar_avataaars_64"])
def test_shipped_g_avatars_keep_g_reals_layout_and_colours(name):
    """The shipped G_avatars were finetuned with the shape path frozen: one code draws the
    same parts in both domains, with the same hair, skin and hat colours (within CIELAB 12)."""
    from swiftavatar.evaluation.correspondence import correspondence, generator_pairs

    g_avatar, meta = load_generator(f"pretrained:{name}")
    g_real, _ = load_generator("pretrained:g_real_64")
    assert meta["run_config"]["freeze"] == "shape"
    report = correspondence(*generator_pairs(g_avatar, g_real, 64, seed=3))
    for region in ("hair", "skin", "hat"):
        score = report.regions[region]
        assert score.iou > 0.85 and score.delta_e < 12, (region, score)
    assert report.presence["hat"].agreement > 0.9 and report.presence["glasses"].agreement > 0.9
