"""Dual-domain generator training (Eq. 1-3): step math, schedules, checkpoints, data, the CLI,
and runs on Ray Train (DDP over 2 workers, restart after a failure, avatar finetuning)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swiftavatar import shards
from synthetic import write_toon_renders
from swiftavatar.cli import main as cli_main
from swiftavatar.faces import write_face_folder
from swiftavatar.models import DiscriminatorConfig, GeneratorConfig
from swiftavatar.training import gan_data
from swiftavatar.training.checkpoint import (CheckpointError, list_checkpoints, load_generator,
                                             read_checkpoint, save_checkpoint)
from swiftavatar.training.gan_config import GanTrainConfig
from swiftavatar.training.gan_loop import GanTrainer
from swiftavatar.training.gan_steps import (d_step, ema_beta, g_step, path_step, r1_step,
                                            to_training_tensors)

TINY_G = GeneratorConfig(size=32, grid=8, min_feat_size=4, style_dim=64, local_channels=16,
                         local_layers=5, base_layers=2, depth_layers=3, feature_channels=16,
                         render_channels=(32, 16, 16))
TINY_D = DiscriminatorConfig(size=32, channels=(16, 32, 32, 32))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(out, **kw) -> GanTrainConfig:
    base = dict(out=str(out), generator=TINY_G, discriminator=TINY_D, batch=4, n_samples=4,
                w_mean_samples=64, real_count=16, data_shard_size=8, progress=False)
    return GanTrainConfig(**{**base, **kw})


def face_batch(n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    from swiftavatar.faces import face_images

    images, masks = face_images(seed, range(n), 32)       # (n, 32, 32, 3), (n, 32, 32) uint8
    return {"image": torch.from_numpy(images), "mask": torch.from_numpy(masks)}


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


@pytest.fixture(scope="module")
def real_trainer(tmp_path_factory):
    torch.manual_seed(0)
    return GanTrainer(tiny_config(tmp_path_factory.mktemp("real")))


@pytest.fixture(scope="module")
def g_real_payload(real_trainer):
    real_trainer.train_step(face_batch())
    return real_trainer.payload()


def avatar_trainer(tmp_path, payload, **kw) -> GanTrainer:
    cfg = tiny_config(tmp_path, domain="avatar", init="unused-when-init-is-given", data="x",
                      discriminator=dataclasses.replace(TINY_D, seg=False), **kw)
    return GanTrainer(cfg, init=payload)


# ---- step functions (no Ray) -------------------------------------------------------------
def test_each_step_updates_only_its_own_network(real_trainer):
    t = real_trainer
    nets, rng = t.nets, torch.Generator().manual_seed(1)
    img, seg = to_training_tensors(face_batch(), 13, "cpu")
    g0, d0 = params(nets.g), params(nets.d)
    m = d_step(nets, img, seg, mixing=0.3, rng=rng)
    assert changed(d0, nets.d) and not changed(g0, nets.g)
    assert np.isfinite([m["d"], m["real_score"], m["fake_score"]]).all()
    d1 = params(nets.d)
    m = r1_step(nets, img, seg, gamma=10.0, gamma_seg=1000.0, every=16)
    assert changed(d1, nets.d) and not changed(g0, nets.g)
    assert m["r1_img"] > 0 and m["r1_seg"] > 0                  # two-branch D: both penalties
    d2 = params(nets.d)
    m = g_step(nets, 4, mixing=1.0, rng=rng, lambda_mask=100.0)
    assert changed(g0, nets.g) and not changed(d2, nets.d)
    assert {"g", "mask"} <= set(m) and "color" not in m
    assert all(p.requires_grad for p in nets.d.parameters())    # D is trainable again
    g1 = params(nets.g)
    m, mean = path_step(nets, 2, 0.3, rng, torch.tensor(0.0), weight=0.5, every=4, decay=0.01)
    assert changed(g1, nets.g) and m["path_length"] > 0
    assert mean.item() == pytest.approx(0.01 * m["path_length"], rel=1e-5)


def test_lazy_regularisers_fire_on_their_schedule_with_adjusted_adam(tmp_path):
    t = GanTrainer(tiny_config(tmp_path, r1_every=3, path_every=2))
    batch = face_batch()
    fired = [t.train_step(batch) for _ in range(7)]
    assert [i for i, m in enumerate(fired) if "r1_img" in m] == [0, 3, 6]
    assert [i for i, m in enumerate(fired) if "path" in m] == [0, 2, 4, 6]
    assert t.step == 7 and t.images_seen == 28
    c_g, c_d = 2 / 3, 3 / 4                      # StyleGAN2: lr * k/(k+1), betas ** (k/(k+1))
    assert t.nets.g_opt.param_groups[0]["lr"] == pytest.approx(0.002 * c_g)
    assert t.nets.g_opt.param_groups[0]["betas"][1] == pytest.approx(0.99 ** c_g)
    assert t.nets.d_opt.param_groups[0]["lr"] == pytest.approx(0.002 * c_d)
    off = GanTrainer(tiny_config(tmp_path, path_weight=0.0))
    assert not any("path" in off.train_step(batch) for _ in range(2))
    assert off.nets.g_opt.param_groups[0]["lr"] == pytest.approx(0.002)


def test_ema_half_life_is_measured_in_images():
    beta = ema_beta(10_000, 16)
    assert beta ** (10_000 / 16) == pytest.approx(0.5)
    assert ema_beta(10_000, 16, images_seen=160, rampup=0.05) < beta  # shorter early on


def test_colour_loss_is_only_in_the_avatar_objective(tmp_path, g_real_payload):
    real = GanTrainer(tiny_config(tmp_path / "r"))
    assert "color" not in real.train_step(face_batch())
    av = avatar_trainer(tmp_path / "a", g_real_payload)
    assert av.g_real is not None and not av.nets.d_mod.config.seg
    assert av.d_source.startswith("G_real checkpoint")
    init_d = g_real_payload["d"]
    for k, v in av.nets.d_mod.state_dict().items():             # image branch carried over
        torch.testing.assert_close(v, init_d[k])
    g_real0 = params(av.g_real)
    batch = {"image": face_batch()["image"]}                      # renders come without masks
    m = av.train_step(batch)
    assert m["color"] == pytest.approx(0.0, abs=1e-3)             # G_avatar starts as G_real
    m = av.train_step(batch)
    assert m["color"] > 0
    assert not changed(g_real0, av.g_real)                         # G_real stays frozen
    assert not any(p.requires_grad for p in av.g_real.parameters())

    def g_after_one_step(lambda_color: float) -> list[torch.Tensor]:
        t = avatar_trainer(tmp_path / f"c{lambda_color}", g_real_payload)
        with torch.no_grad():                                      # make the colours differ
            t.nets.g_mod.render.to_rgbs[-1].bias.add_(0.5)
        g_step(t.nets, 4, 0.0, torch.Generator().manual_seed(3), 0.0, lambda_color)
        return params(t.nets.g)

    without, with_color = g_after_one_step(0.0), g_after_one_step(10.0)
    assert any(not torch.equal(a, b) for a, b in zip(without, with_color))


def test_frozen_shape_path_stays_bit_identical_and_layouts_stay_shared(tmp_path,
                                                                       g_real_payload):
    from swiftavatar.production.mean_latent import coarse_masks
    from swiftavatar.training.freeze import frozen_count, frozen_elements

    av = avatar_trainer(tmp_path, g_real_payload, freeze="shape", lambda_mask=100.0,
                        path_every=1, mixing=1.0)
    g = av.nets.g_mod
    frozen = frozen_elements(g, "shape")
    assert {"style.layers.0.weight", "local.depth_weight", "local.weight"} <= set(frozen)
    assert frozen["local.weight"][:TINY_G.depth_layers].all()
    assert not frozen["local.weight"][TINY_G.depth_layers:].any()
    assert not any(k.startswith("render.") for k in frozen)
    assert 0 < frozen_count(frozen) < sum(p.numel() for p in g.parameters())
    before = {k: v.detach().clone() for k, v in g.named_parameters()}
    batch = {"image": face_batch()["image"]}
    steps = [av.train_step(batch) for _ in range(3)]
    assert all("path" in m and "mask" in m and "color" in m for m in steps)
    after = dict(g.named_parameters())
    for name, mask in frozen.items():                    # frozen elements: bit-identical
        assert torch.equal(after[name].detach()[mask], before[name][mask]), name
    assert not torch.equal(after["local.weight"].detach()[TINY_G.depth_layers:],
                           before["local.weight"][TINY_G.depth_layers:])   # texture trains
    assert not torch.equal(after["render.convs.0.weight"].detach(),
                           before["render.convs.0.weight"])
    w = av.g_real.mapping(torch.randn(5, TINY_G.style_dim, generator=torch.Generator()
                                      .manual_seed(4)))
    with torch.no_grad():                                 # one code, one layout in both domains
        for gen in (av.nets.g_mod, av.nets.g_ema):
            assert torch.equal(coarse_masks(gen, w), coarse_masks(av.g_real, w))


def test_avatar_discriminator_can_see_engine_masks(tmp_path, g_real_payload):
    cfg = tiny_config(tmp_path, domain="avatar", init="x", data="x", mask_discriminator=True,
                      freeze="shape")
    av = GanTrainer(cfg, init=g_real_payload)
    assert av.nets.d_mod.config.seg and av.d_source == "G_real checkpoint"
    for k, v in av.nets.d_mod.state_dict().items():             # both branches carried over
        torch.testing.assert_close(v, g_real_payload["d"][k])
    m = av.train_step(face_batch())                               # renders with masks
    assert m["r1_seg"] > 0
    bad = {k: v for k, v in GanTrainConfig(domain="real", out="x", freeze="shape").problems()}
    assert "applies to finetuning only" in bad["freeze"]
    bad = dict(GanTrainConfig(domain="avatar", out="x", init="a", data="b",
                              freeze="texture").problems())
    assert "must be one of" in bad["freeze"]
    bad = dict(GanTrainConfig(domain="avatar", out="x", init="a", data="b",
                              color_classes=(1, 1)).problems())
    assert "distinct" in bad["color_classes"]


def test_g_real_finetune_from_a_checkpoint_keeps_its_layout(tmp_path, g_real_payload):
    """Domain real with init: G_real's texture finetuned on new faces (here the randomised
    domain), starting from the checkpoint's G_ema and two-branch D, shape path frozen."""
    from swiftavatar.faces import FaceDomainConfig, face_images
    from swiftavatar.production.mean_latent import coarse_masks
    from swiftavatar.training.freeze import frozen_elements

    cfg = tiny_config(tmp_path, domain="real", init="x", freeze="shape")
    assert cfg.problems() == []
    ft = GanTrainer(cfg, init=g_real_payload)
    assert ft.g_real is None and ft.d_source == "G_real checkpoint"   # no Eq. 3 reference
    for k, v in ft.nets.g_mod.state_dict().items():
        torch.testing.assert_close(v, g_real_payload["g_ema"][k])
    images, masks = face_images(0, range(4), 32, FaceDomainConfig.randomised())
    batch = {"image": torch.from_numpy(images), "mask": torch.from_numpy(masks)}
    frozen = frozen_elements(ft.nets.g_mod, "shape")
    before = {k: v.detach().clone() for k, v in ft.nets.g_mod.named_parameters()}
    steps = [ft.train_step(batch) for _ in range(2)]
    assert all("color" not in m and "mask" in m for m in steps)   # Eq. 1 terms, no Eq. 3
    after = dict(ft.nets.g_mod.named_parameters())
    for name, mask in frozen.items():
        assert torch.equal(after[name].detach()[mask], before[name][mask]), name
    assert not torch.equal(after["render.convs.0.weight"].detach(),
                           before["render.convs.0.weight"])
    start = GanTrainer(tiny_config(tmp_path / "s", domain="real", init="x"),
                       init=g_real_payload).nets.g_mod
    w = start.mapping(torch.randn(5, TINY_G.style_dim,
                                  generator=torch.Generator().manual_seed(4)))
    with torch.no_grad():                        # the G_avatars made from it still correspond
        assert torch.equal(coarse_masks(ft.nets.g_mod, w), coarse_masks(start, w))


# ---- checkpoints -------------------------------------------------------------------------
def test_checkpoint_round_trip_and_exact_resume(tmp_path):
    t = GanTrainer(tiny_config(tmp_path, r1_every=2, path_every=2))
    batch = face_batch()
    for _ in range(3):
        t.train_step(batch)
    ckpt_dir = tmp_path / "train" / "checkpoint_0000003"
    save_checkpoint(ckpt_dir, t.payload(), t.sample_png())
    payload = torch.load(ckpt_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["step"] == 3 and payload["run_config"]["domain"] == "real"
    g, meta = load_generator(tmp_path)                             # the run dir: latest ckpt
    assert meta["step"] == 3 and meta["w_mean"].shape == (1, TINY_G.style_dim)
    assert meta["generator_config"]["size"] == 32 and meta["discriminator_config"]["seg"]
    z = torch.randn(2, TINY_G.style_dim)
    with torch.no_grad():
        torch.testing.assert_close(g(z, noise="const")[0], t.nets.g_ema(z, noise="const")[0])
    assert json.loads((ckpt_dir / "meta.json").read_text())["step"] == 3
    assert (ckpt_dir / "sample.png").read_bytes()[:4] == b"\x89PNG"

    resumed = GanTrainer(tiny_config(tmp_path, r1_every=2, path_every=2),
                         resume=read_checkpoint(ckpt_dir))
    assert resumed.step == 3 and resumed.images_seen == t.images_seen
    for _ in range(2):                 # steps 3 (no regulariser) and 4 (R1 and path length)
        t.train_step(batch)
        resumed.train_step(batch)
    for a, b in zip(t.nets.g_ema.parameters(), resumed.nets.g_ema.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(t.nets.d.parameters(), resumed.nets.d.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_run_loop_reports_checkpoints_and_samples_on_schedule(tmp_path):
    from swiftavatar.training.gan_loop import InjectedFailure, run_loop

    cfg = tiny_config(tmp_path, steps=5, checkpoint_every=2, sample_every=3, log_every=2)
    reports = []

    def report(metrics, checkpoint_dir, step):
        meta = json.loads((Path(checkpoint_dir) / "meta.json").read_text())
        reports.append((step, metrics["step"], meta["step"], metrics["start_step"]))

    batches = [face_batch()] * 10
    run_loop(GanTrainer(cfg), batches, resumed=False, report=report)
    assert reports == [(2, 2, 2, 0), (4, 4, 4, 0), (5, 5, 5, 0)]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        f"step-000000{s}.png" for s in (2, 3, 4, 5)]
    failing = dataclasses.replace(cfg, fail_at_step=1)
    with pytest.raises(InjectedFailure):
        run_loop(GanTrainer(failing), batches, resumed=False, report=report)
    t = GanTrainer(failing)
    run_loop(t, batches, resumed=True, report=lambda *a: None)    # a resumed run goes on
    assert t.step == 5


def test_bad_checkpoint_paths_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_generator(tmp_path)
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        load_generator(tmp_path / "x.pt")
    assert list_checkpoints(tmp_path) == {}


# ---- data --------------------------------------------------------------------------------
def test_face_shards_decode_to_training_tensors(tmp_path):
    plan = gan_data.plan_data("real", None, str(tmp_path), 32, 10, 5, 4)
    assert plan.masks and plan.spec.num_shards == 3
    assert gan_data.prepare_face_dir(plan) == [0, 1, 2]
    for k in (0, 2):
        gan_data.write_face_shard(plan.directory, plan.spec, k)
    assert gan_data.prepare_face_dir(plan) == [1]                  # resumes the missing shard
    with pytest.raises(gan_data.DataError, match="made differently"):
        gan_data.prepare_face_dir(gan_data.plan_data("real", None, str(tmp_path), 32, 10, 6, 4))
    batch = next(iter(gan_data.local_batches(plan.directory, 32, True, batch=3)))
    assert batch["image"].shape == (3, 32, 32, 3) and batch["mask"].shape == (3, 32, 32)
    img, seg = to_training_tensors({k: torch.from_numpy(v) for k, v in batch.items()}, 13, "cpu")
    assert img.shape == (3, 3, 32, 32) and -1 <= img.min() and img.max() <= 1
    assert seg.shape == (3, 13, 32, 32) and set(seg.unique().tolist()) == {-1.0, 1.0}
    np.testing.assert_array_equal(seg.argmax(1).numpy(), batch["mask"])
    small = gan_data.decode_batch({"image_png": np.array([shards.encode_png(
        np.zeros((64, 64, 3), np.uint8))], dtype=object)}, 32, masks=False)
    assert small["image"].shape == (1, 32, 32, 3) and "mask" not in small


def test_randomised_face_preset_writes_the_randomised_domain(tmp_path):
    from swiftavatar.faces import FaceDomainConfig, face_images

    plan = gan_data.plan_data("real", None, str(tmp_path / "r"), 32, 3, 0, 4,
                              real_faces="randomised")
    assert plan.spec.manifest()["preset"] == "randomised"
    assert "preset" not in gan_data.plan_data("real", None, str(tmp_path / "d"), 32, 3, 0,
                                              4).spec.manifest()   # as before presets existed
    gan_data.prepare_face_dir(plan)
    gan_data.write_face_shard(plan.directory, plan.spec, 0)
    batch = next(iter(gan_data.local_batches(plan.directory, 32, True, batch=3, seed=0)))
    order = np.random.default_rng(0).permutation(3)               # local_batches' shuffle
    images, masks = face_images(0, range(3), 32, FaceDomainConfig.randomised())
    np.testing.assert_array_equal(batch["image"], images[order])  # the randomised faces, ...
    np.testing.assert_array_equal(batch["mask"], masks[order])
    assert not np.array_equal(images, face_images(0, range(3), 32)[0])   # ... not the default
    with pytest.raises(gan_data.DataError, match="made differently"):      # one data dir, one
        gan_data.prepare_face_dir(gan_data.plan_data("real", None, str(tmp_path / "r"), 32, 3,
                                                     0, 4))                # preset
    with pytest.raises(gan_data.DataError, match="procedural faces only"):
        gan_data.plan_data("avatar", "x", str(tmp_path / "a"), 32, 3, 0, 4,
                           real_faces="randomised")


def test_flips_move_images_and_masks_together():
    b = face_batch(8)
    img, seg = to_training_tensors(b, 13, "cpu", flip=torch.Generator().manual_seed(0))
    plain, _ = to_training_tensors(b, 13, "cpu")
    flipped = [i for i in range(8) if not torch.equal(img[i], plain[i])]
    assert 0 < len(flipped) < 8
    for i in range(8):
        want = b["mask"][i].flip(-1) if i in flipped else b["mask"][i]
        torch.testing.assert_close(seg[i].argmax(0), want.long())


def test_data_sources_are_recognised(tmp_path):
    rng = np.random.default_rng(0)
    write_face_folder(tmp_path / "folder", rng.integers(0, 255, (3, 40, 40, 3), np.uint8),
                      rng.integers(0, 13, (3, 40, 40), np.uint8))
    plan = gan_data.plan_data("real", str(tmp_path / "folder"), str(tmp_path / "run"), 32,
                              100, 0, 2)
    assert plan.spec.source == "folder" and plan.spec.count == 3
    assert plan.directory == str(tmp_path / "run" / "data")
    with pytest.raises(gan_data.DataError, match="neither a face folder"):
        gan_data.plan_data("real", str(tmp_path), str(tmp_path / "run"), 32, 100, 0, 2)
    with pytest.raises(gan_data.DataError, match="swiftavatar render"):
        gan_data.plan_data("avatar", str(tmp_path), str(tmp_path / "run"), 32, 100, 0, 2)


# ---- CLI ---------------------------------------------------------------------------------
def test_cli_dry_run_prints_the_resolved_config(tmp_path, capsys, g_real_payload):
    assert cli_main(["train-generator", "--domain", "real", "--out", str(tmp_path / "r"),
                     "--steps", "7", "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"]["steps"] == 7 and shown["config"]["batch"] == 16
    assert shown["config"]["lambda_mask"] == 100.0 and shown["config"]["discriminator"]["seg"]
    assert shown["data"]["writes"]["source"] == "procedural"
    save_checkpoint(tmp_path / "g_real", g_real_payload)
    avatars = tmp_path / "toon"
    render_avatars(avatars, count=2)
    assert cli_main(["train-generator", "--domain", "avatar", "--out", str(tmp_path / "a"),
                     "--init", str(tmp_path / "g_real"), "--data", str(avatars),
                     "--ema-rampup", "0.05", "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)["config"]
    assert shown["ema_rampup"] == 0.05
    assert shown["generator"] == json.loads(json.dumps(dataclasses.asdict(TINY_G)))  # G_real's
    # toon renders carry masks: the avatar D sees them too, and the frozen layout's masks are
    # held to the engine's with SemanticStyleGAN's pretraining weight
    assert shown["discriminator"]["seg"] is True and shown["steps"] == 2000
    assert shown["freeze"] == "shape" and shown["lambda_mask"] == 100.0
    assert shown["init"].endswith("checkpoint.pt")


@pytest.mark.parametrize("flags, words", [
    (["--domain", "avatar", "--data", "x"], "--init is required"),
    (["--domain", "real", "--workers", "3"], "--batch"),
    (["--domain", "real", "--steps", "0"], "--steps"),
    (["--domain", "real", "--gpus-per-worker", "-1"], "--gpus-per-worker"),
    (["--domain", "real", "--data", "x", "--real-faces", "randomised"], "--real-faces"),
])
def test_cli_bad_flags_exit_2_naming_the_flag(flags, words, tmp_path, capsys):
    assert cli_main(["train-generator", "--out", str(tmp_path / "o"), *flags]) == 2
    assert words in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main(["train-generator", "--domain", "real", "--out", "x", "--no-such-flag"])
    assert exc.value.code == 2


# ---- Ray Train ---------------------------------------------------------------------------
def render_avatars(out, count: int = 16):
    """A real avatar dataset (toon engine, 32 px) written by the rendering stage's own code."""
    return write_toon_renders(out, count, seed=0, size=32, shard_size=8)


@pytest.fixture(scope="module")
def real_run(ray_local, tmp_path_factory):
    """G_real on 2 DDP workers: checkpoints at 2 and 4, a failure at step 5, resume, end at 6."""
    from actors.train_generator import run_training

    cfg = tiny_config(tmp_path_factory.mktemp("gan") / "real", steps=6, checkpoint_every=2,
                      sample_every=0, log_every=2, num_workers=2, cpus_per_worker=0.5,
                      fail_at_step=5, max_failures=1, r1_every=2, path_every=2,
                      real_count=32, data_shard_size=16)    # one epoch per attempt
    return cfg, run_training(cfg)


@pytest.mark.ray
@pytest.mark.timeout(150)
@pytest.mark.slow
def test_ddp_run_checkpoints_and_resumes_after_a_failure(real_run):
    cfg, summary = real_run
    out = summary.out
    assert summary.step == 6 and summary.images_seen == 24
    assert summary.metrics["start_step"] == 4         # the restart resumed at the checkpoint
    assert summary.metrics["replica_spread"] == 0.0   # DDP kept both replicas identical
    assert sorted(list_checkpoints(out)) == [2, 4, 6]
    ckpt = list_checkpoints(out)[6]
    sample = shards.decode_png((ckpt / "sample.png").read_bytes())
    assert (ckpt / "sample.png").read_bytes() == (
        Path(out) / "samples" / "step-0000006.png").read_bytes()
    assert sample.shape == (2 + 2 * 34, 2 + 4 * 34, 3)   # rows: images, masks; 4 columns
    saved = json.loads((Path(out) / "config.json").read_text())
    assert saved["num_workers"] == 2 and saved["steps"] == 6
    g, meta = load_generator(out)
    assert meta["step"] == 6 and meta["run_config"] == saved
    with torch.no_grad():
        assert torch.isfinite(g(torch.randn(2, TINY_G.style_dim))[0]).all()


@pytest.mark.ray
@pytest.mark.timeout(150)
@pytest.mark.slow
def test_avatar_finetuning_from_g_real_and_rerun_with_more_steps(real_run, tmp_path):
    from actors.train_generator import RunMismatchError, run_training

    _, real = real_run
    data = render_avatars(tmp_path / "toon")
    cfg = GanTrainConfig(domain="avatar", out=str(tmp_path / "avatar"), data=str(data),
                         init=real.out, steps=2, batch=4, n_samples=4, w_mean_samples=64,
                         checkpoint_every=2, sample_every=1, progress=False)
    first = run_training(cfg)
    assert first.step == 2
    g_av, meta = load_generator(first.out)
    assert meta["domain"] == "avatar" and meta["discriminator_config"]["seg"] is True  # masks
    assert meta["run_config"]["init"].endswith("checkpoint_0000006/checkpoint.pt")
    g_real, _ = load_generator(real.out)
    assert any(not torch.equal(a, b) for a, b in zip(g_av.parameters(), g_real.parameters()))
    grid = shards.decode_png((tmp_path / "avatar" / "samples" / "step-0000002.png").read_bytes())
    assert grid.shape == (2 + 4 * 34, 2 + 4 * 34, 3)      # G_real rows above G_avatar rows
    assert (tmp_path / "avatar" / "samples" / "step-0000001.png").is_file()

    again = run_training(dataclasses.replace(cfg, steps=3))   # same run dir: resumes
    assert again.step == 3 and again.metrics["start_step"] == 2
    with pytest.raises(RunMismatchError, match="seed"):
        run_training(dataclasses.replace(cfg, steps=4, seed=1))
