"""F2P's identity embedding: its loss falls on a tiny set of procedural identities and it
embeds two views of one unseen identity closer than two identities; its checkpoint
round-trips; F2P with the identity loss lowers its loss and returns a valid vector; the
`train-identity` and `f2p --identity` commands work and name a bad flag; F2P v2's translator
trains (its loss falls) and predicts valid vectors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from swiftavatar.f2p import F2PConfig, f2p
from swiftavatar.f2p.identity import IdentityNet, IdentityNetConfig
from swiftavatar.f2p.identity_train import (IdentityCheckpointError, IdentityTrainConfig,
                                            load_identity, render_views, save_identity,
                                            train_identity, view_configs)
from swiftavatar.f2p.parser_train import ParserTrainConfig, render_split, save_parser
from tests.test_f2p import SIZE, _cli, parser_run, toon  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = IdentityTrainConfig(model=IdentityNetConfig(channels=(8, 16, 32), dim=32), size=SIZE,
                           identities=24, views=3, val_identities=12, epochs=10, batch=18,
                           lr=5e-3)


@pytest.fixture(scope="module")
def identity_run():
    model, result = train_identity(TINY)
    return model, result


def test_views_keep_the_person_and_change_pose_and_light():
    configs = view_configs(3, 0, SIZE)
    assert len({c.yaw_deg for c in configs}) == 3
    views = render_views(IdentityTrainConfig(size=SIZE, identities=2, views=3), "train")
    assert views.shape == (2, 3, SIZE, SIZE, 3) and views.dtype == np.uint8
    assert not np.array_equal(views[0, 0], views[0, 1])
    from swiftavatar.faces.procedural import face_attributes

    a, b = (face_attributes(0, [1], c)[0] for c in configs[:2])
    assert (a.skin_tone, a.hair_style, a.hair_color, a.face_shape, a.eye_size, a.clothing) == \
        (b.skin_tone, b.hair_style, b.hair_color, b.face_shape, b.eye_size, b.clothing)
    assert a.head_yaw_deg != b.head_yaw_deg and a.light_azimuth_deg != b.light_azimuth_deg


def test_identity_loss_falls_and_unseen_identities_separate(identity_run, tmp_path):
    model, result = identity_run
    losses = result["losses"]
    # measured: 5.16 in the first epoch, 0.16 in the 10th
    assert losses[-1] < 0.3 * losses[0], losses
    rep = result["report"]
    # measured on the 12 unseen identities: cosine 0.95 same, 0.66 different; accuracy 0.93
    assert rep["identities"] == 12 and rep["pairs"] == 12 * 3
    assert rep["mean_cos_same"] > rep["mean_cos_diff"] + 0.1, rep
    assert rep["accuracy"] > 0.75 and rep["auc"] > 0.75, rep
    x = torch.rand(2, 3, 48, 48) * 2 - 1           # any size: resized to the trained one
    with torch.no_grad():
        e = model(x)
    assert e.shape == (2, 32) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    save_identity(tmp_path / "run", model, TINY, result)
    back, meta = load_identity(tmp_path / "run")
    assert meta["result"]["report"] == rep and back.cfg.size == SIZE
    with torch.no_grad():
        assert torch.equal(back(x), e)
    with pytest.raises(IdentityCheckpointError, match="no identity network checkpoint"):
        load_identity(tmp_path)
    save_parser(tmp_path / "parser", IdentityNet(), ParserTrainConfig(), {})
    with pytest.raises(IdentityCheckpointError, match="not an identity network checkpoint"):
        load_identity(tmp_path / "parser")


def test_f2p_with_the_identity_loss_lowers_its_loss(identity_run, parser_run, toon):
    identity, _ = identity_run
    _, parser, _ = parser_run
    schema, imitator = toon
    photo = render_split(ParserTrainConfig(size=SIZE, train_faces=40, val_faces=1), "val")[0]
    torch.manual_seed(0)
    vectors, history = f2p(imitator, parser, photo, schema,
                           F2PConfig(steps=25, lr=0.1, identity_weight=1.0), identity=identity)
    # measured: loss 1.51 at the first step, 0.59 at the 25th; identity 0.68 -> 0.04, content
    # 0.83 -> 0.56
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    assert history["identity"][-1] < 0.5 * history["identity"][0], history["identity"]
    vectors.validate()
    assert len(vectors) == 1 and np.isfinite(history["decoded_loss"])
    assert not identity.training and all(p.requires_grad for p in identity.parameters())


def test_train_identity_and_f2p_identity_commands(identity_run, parser_run, toon, tmp_path,
                                                  capsys):
    from PIL import Image

    from swiftavatar.imitator.checkpoint import make_payload, save_checkpoint

    schema, imitator = toon
    cfg, parser, presult = parser_run
    save_checkpoint(tmp_path / "imitator", make_payload(imitator, None, schema, epoch=1,
                                                        step=40))
    save_parser(tmp_path / "parser", parser, cfg, presult)
    small = ["--size", SIZE, "--identities", 6, "--views", 2, "--val-identities", 4,
             "--epochs", 1, "--batch", 6]
    code, out, err = _cli(["train-identity", "--out", tmp_path / "id", *small, "--dry-run"],
                          capsys)
    assert code == 0 and json.loads(out)["identities"] == 6 and not (tmp_path / "id").exists()
    code, out, err = _cli(["train-identity", "--out", tmp_path / "id", *small], capsys)
    assert code == 0, err
    assert 0 <= json.loads(out)["accuracy"] <= 1 and (tmp_path / "id" / "meta.json").is_file()
    for args, flag in ((["--views", 1], "--views"), (["--lr", 0], "--lr"),
                       (["--torch-threads", -1], "--torch-threads")):
        code, _, err = _cli(["train-identity", "--out", tmp_path / "bad", *small, *args],
                            capsys)
        assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not (tmp_path / "bad").exists()
    photo = tmp_path / "face.png"
    Image.fromarray(render_split(ParserTrainConfig(size=48, train_faces=1, val_faces=1),
                                 "val")[0][0]).save(photo)
    base = ["f2p", photo, "--imitator", tmp_path / "imitator", "--parser", tmp_path / "parser",
            "--out", tmp_path / "out", "--size", 32, "--steps", 4]
    code, out, err = _cli(base + ["--identity", tmp_path / "id", "--identity-weight", 0.5],
                          capsys)
    assert code == 0, err
    row = json.loads((tmp_path / "out" / "face.json").read_text())
    schema.vector(row["vector"]).batch().validate()
    assert row["identity_last"] > 0
    for args, flag in ((["--identity", tmp_path / "id"], "--identity-weight"),
                       (["--identity-weight", 0.5], "--identity"),
                       (["--identity", tmp_path / "id", "--identity-weight", -1],
                        "--identity-weight"),
                       (["--identity", tmp_path / "nothing", "--identity-weight", 0.5],
                        "--identity")):
        code, _, err = _cli(base + args, capsys)
        assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, (args, err)


def test_f2p_v2_translator_trains_and_predicts_valid_vectors(identity_run, parser_run, toon):
    from swiftavatar.f2p.translator import TranslatorConfig, TranslatorTrainConfig, \
        train_translator, translate

    identity, _ = identity_run
    _, parser, _ = parser_run
    schema, imitator = toon
    faces = render_split(ParserTrainConfig(size=SIZE, train_faces=40, val_faces=32), "val")[0]
    cfg = TranslatorTrainConfig(model=TranslatorConfig(hidden=64), epochs=15, batch=16,
                                lr=3e-3, loss=F2PConfig(identity_weight=1.0))
    translator, result = train_translator(imitator, parser, identity, faces, schema, cfg)
    losses = result["losses"]
    # measured: 1.51 in the first epoch, 0.82 in the 15th
    assert len(losses) == 15 and losses[-1] < 0.9 * losses[0], losses
    photos = render_split(ParserTrainConfig(size=SIZE, train_faces=72, val_faces=3), "val")[0]
    vectors = translate(translator, identity, photos, schema, imitator.cfg.image_size)
    vectors.validate()
    assert len(vectors) == 3 and vectors.schema.fingerprint == schema.fingerprint
    assert not np.allclose(vectors.continuous[0], vectors.continuous[1])   # photo-dependent
    assert not translator.training and all(p.requires_grad for p in identity.parameters())


def test_the_loopback_term_trains_only_the_translator_and_falls(identity_run, toon):
    from swiftavatar.f2p.translator import Translator, TranslatorConfig, loopback_loss

    identity, _ = identity_run
    schema, imitator = toon
    torch.manual_seed(0)
    translator = Translator.for_schema(TranslatorConfig(hidden=32), identity.cfg.dim, schema)
    opt = torch.optim.Adam(translator.parameters(), lr=2e-2)
    vectors = schema.sample(5, range(16))              # one fixed batch: it should fit it
    imitator.eval(), identity.eval()
    for p in (*identity.parameters(), *imitator.parameters()):
        p.grad = None                                  # left by the fixtures' training
    losses = []
    for _ in range(60):
        loss = loopback_loss(translator, imitator, identity, vectors, "cpu")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
    assert all(p.grad is not None for p in translator.parameters())
    assert all(p.grad is None for p in (*identity.parameters(), *imitator.parameters()))
