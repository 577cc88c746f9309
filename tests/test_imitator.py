"""The imitator (F2P's generator from an avatar vector to the engine's image): it overfits a
tiny render set, gradients reach every continuous value and every option logit of a relaxed
vector, relaxed inputs decode to valid vectors, and `swiftavatar train-imitator` trains on Ray
Train (the session's Ray), reports on held-out renders, resumes and names bad flags."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from swiftavatar.cli import main
from swiftavatar.engines.registry import get_engine
from swiftavatar.imitator import (Imitator, ImitatorConfig, RelaxedVector, annealed_temperature,
                                  decode_relaxed, imitator_loss, relaxed_inputs)
from swiftavatar.imitator.data import RowFilter, load_renders, open_renders
from synthetic import write_toon_renders

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    return write_toon_renders(tmp_path_factory.mktemp("imitator") / "renders", 16, size=32)


@pytest.fixture(scope="module")
def toon_schema():
    with get_engine("toon") as engine:
        return engine.schema


@pytest.mark.slow
def test_imitator_overfits_a_tiny_render_set(renders):
    from swiftavatar.imitator.config import ImitatorTrainConfig
    from swiftavatar.imitator.loop import ImitatorTrainer

    source = open_renders(str(renders))
    rows = load_renders(source, RowFilter("all"), size=32)
    assert rows["image"].shape == (16, 32, 32, 3)
    assert rows["cont"].shape == (16, source.schema.n_continuous)
    assert rows["disc"].shape == (16, source.schema.n_discrete)
    cfg = ImitatorTrainConfig(data="-", out="-", batch=16, lr=2e-3,
                              model=ImitatorConfig(image_size=32, channels=64))
    trainer = ImitatorTrainer(cfg, source.schema)
    losses = [trainer.train_step(rows)["l1"] for _ in range(100)]
    # measured: 0.59 at the start, 0.069 after 100 steps
    assert losses[-1] < 0.25 * losses[0], (losses[0], losses[-1])
    assert trainer.evaluate([rows])["val_l1"] < 0.5 * losses[0]


def test_gradient_reaches_every_continuous_value_and_option_logit(toon_schema):
    torch.manual_seed(0)
    model = Imitator.for_schema(ImitatorConfig(image_size=16, channels=32), toon_schema).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    start = toon_schema.sample(1, [0, 1])
    relaxed = RelaxedVector(toon_schema, start)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    loss, _ = imitator_loss(model(relaxed(temperature=0.7)), target)
    loss.backward()
    assert relaxed.u.grad.shape == (2, toon_schema.n_continuous)
    assert (relaxed.u.grad.abs() > 0).all()
    assert len(relaxed.logits) == toon_schema.n_discrete
    for j, lg in enumerate(relaxed.logits):
        assert lg.grad.shape == (2, toon_schema.num_options[j])
        assert (lg.grad.abs() > 0).all(), toon_schema.discrete[j].name
    # and descending that gradient lowers the loss
    opt = torch.optim.Adam(relaxed.parameters(), lr=0.05)
    first = last = None
    for step in range(30):
        opt.zero_grad()
        t = annealed_temperature(step, 30, 1.0, 0.1)
        loss, _ = imitator_loss(model(relaxed(t)), target)
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
        last = float(loss.detach())
    assert last < first


def test_relaxed_inputs_decode_to_valid_vectors(toon_schema):
    gen = torch.Generator().manual_seed(1)
    n = 5
    cont = torch.randn(n, toon_schema.n_continuous, generator=gen) * 3     # out of [0, 1]
    logits = [torch.randn(n, k, generator=gen) for k in toon_schema.num_options]
    x = relaxed_inputs(cont.clamp(0, 1), logits, temperature=0.5)
    assert x.shape == (n, toon_schema.onehot_dim)
    vec = decode_relaxed(toon_schema, cont, logits)
    vec.validate()
    assert np.array_equal(vec.discrete, np.stack([lg.argmax(1).numpy() for lg in logits], 1))
    # a relaxed vector decodes back to the vector it started from
    start = toon_schema.sample(2, range(4))
    back = RelaxedVector(toon_schema, start).decode()
    back.validate()
    assert np.array_equal(back.discrete, start.discrete)
    assert np.abs(back.normalized_continuous() - start.normalized_continuous()).max() <= 0.021
    # near-zero temperature: each block is one-hot
    sharp = relaxed_inputs(cont.clamp(0, 1), logits, temperature=1e-4)
    assert torch.allclose(sharp[:, toon_schema.n_continuous:].sum(1),
                          torch.full((n,), float(toon_schema.n_discrete)))
    assert annealed_temperature(0, 10) == 1.0 and abs(annealed_temperature(9, 10) - 0.05) < 1e-9


def _cli(args, capsys):
    code = main(["train-imitator", *[str(a) for a in args]])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bad_flags_are_named(renders, tmp_path, capsys):
    base = ["--data", renders, "--out", tmp_path / "run"]
    code, out, _ = _cli(base + ["--image-size", 32, "--batch", 4, "--val-fraction", 0.25,
                                "--dry-run"], capsys)
    assert code == 0
    plan = json.loads(out)
    assert (plan["config"]["model"]["image_size"], plan["config"]["batch"]) == (32, 4)
    assert plan["data"]["rows_train"] + plan["data"]["rows_val"] == 16
    assert plan["resume_from_epoch"] is None
    for args, flag in ((["--image-size", 48], "--image-size"),
                       (["--batch", 3, "--workers", 2], "--batch"),
                       (["--val-fraction", 0], "--val-fraction"),
                       (["--epochs", 0], "--epochs"),
                       (["--channels", 2], "--channels")):
        code, _, err = _cli(base + args + ["--dry-run"], capsys)
        assert code == 2 and flag in err, (args, err)
    code, _, err = _cli(["--data", tmp_path / "nothing", "--out", tmp_path / "x", "--dry-run"],
                        capsys)
    assert code == 2 and "--data" in err
    code, _, err = _cli(base + ["--batch", 64, "--dry-run"], capsys)      # 16 renders
    assert code == 2 and "--batch" in err
    taken = tmp_path / "a-file"
    taken.write_text("")
    code, _, err = _cli(["--data", renders, "--out", taken, "--batch", 4], capsys)
    assert code == 2 and str(taken) in err and len(err.strip().splitlines()) == 1


def test_a_bad_checkpoint_is_one_line_saying_what_is_expected(tmp_path):
    from swiftavatar.imitator.checkpoint import ImitatorCheckpointError, load_imitator

    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ImitatorCheckpointError, match="train-imitator"):
        load_imitator(bad)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(ImitatorCheckpointError, match="holds no imitator checkpoint"):
        load_imitator(empty)


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.timeout(420)          # 96-179 s on this 2-core machine under load 16-35
def test_train_imitator_on_ray_train_reports_and_resumes(ray_local, renders, tmp_path,
                                                         capsys):
    out = tmp_path / "run"
    common = ["--data", renders, "--out", out, "--image-size", 32, "--channels", 32,
              "--batch", 4, "--workers", 1, "--cpus-per-worker", 0.5, "--torch-threads", 1,
              "--val-fraction", 0.25, "--no-progress"]
    code, stdout, err = _cli(common + ["--epochs", 1, "--no-lpips"], capsys)
    assert code == 0, err[-3000:]
    assert "held-out" in stdout
    code, stdout, err = _cli(common + ["--epochs", 2], capsys)
    assert code == 0, err[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["data"]["rows_train"]
    assert rows + summary["data"]["rows_val"] == 16
    assert (summary["epoch"], summary["step"]) == (2, 2 * (rows // 4))
    report = summary["report"]
    assert report["rows"] == summary["data"]["rows_val"] > 0
    assert 0 < report["l1"] < 2 and report["lpips"] > 0 and "lpips_se" in report
    assert (out / "samples.png").is_file()
    assert sorted(p.name for p in (out / "train").glob("checkpoint_0*")) == [
        "checkpoint_00001", "checkpoint_00002"]
    from swiftavatar.imitator.checkpoint import load_imitator

    model, schema, meta = load_imitator(out)
    assert meta["epoch"] == 2 and model.fits(schema) and model.cfg.image_size == 32
    code, _, err = _cli(common + ["--epochs", 3, "--seed", 5], capsys)   # another run
    assert code == 2 and "seed" in err
