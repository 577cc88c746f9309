"""F2P v2's translator on the command line: `train-translator` trains on procedural faces
through tiny imitator, parser and identity networks trained here, and writes a checkpoint
that loads, records its engine schema and predicts valid vectors; --dry-run prints the
resolved config; bad flag values and bad checkpoints are one line naming the flag, exit 2;
`f2p --translator` writes a valid vector and its render per photo, needs --identity, and
refuses a translator meant for another schema or identity network."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from swiftavatar.cli import main
from swiftavatar.engines.registry import get_engine
from swiftavatar.f2p.parser_train import ParserTrainConfig, render_split
from tests.test_f2p import _cli, toon  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 32
SMALL = ["--faces", 8, "--epochs", 2, "--batch", 4, "--hidden", 16]


@pytest.fixture(scope="module")
def nets(toon, tmp_path_factory):
    """{"imitator" (test_f2p's), "parser", "identity", "identity6" (another embedding size):
    run dirs of tiny networks trained for a few steps, "schema": toon's, "photo": a face
    PNG}."""
    from PIL import Image

    from swiftavatar.f2p.identity import IdentityNetConfig
    from swiftavatar.f2p.identity_train import IdentityTrainConfig, save_identity, \
        train_identity
    from swiftavatar.f2p.parser import FaceParserConfig
    from swiftavatar.f2p.parser_train import save_parser, train_parser
    from swiftavatar.imitator.checkpoint import make_payload, save_checkpoint

    root = tmp_path_factory.mktemp("nets")
    schema, imitator = toon
    save_checkpoint(root / "imitator", make_payload(imitator, None, schema, epoch=1, step=40))
    pcfg = ParserTrainConfig(model=FaceParserConfig(channels=(4, 8, 8)), size=SIZE,
                             train_faces=8, val_faces=2, epochs=1, batch=8)
    save_parser(root / "parser", *_pair(train_parser(pcfg), pcfg))
    for name, dim in (("identity", 8), ("identity6", 6)):
        icfg = IdentityTrainConfig(model=IdentityNetConfig(channels=(4, 8, 8), dim=dim),
                                   size=SIZE, identities=4, views=2, val_identities=2,
                                   epochs=1, batch=8)
        save_identity(root / name, *_pair(train_identity(icfg), icfg))
    photo = root / "face.png"
    Image.fromarray(render_split(ParserTrainConfig(size=48, train_faces=1, val_faces=1),
                                 "val")[0][0]).save(photo)
    return {"imitator": root / "imitator", "parser": root / "parser",
            "identity": root / "identity", "identity6": root / "identity6",
            "schema": schema, "photo": photo}


def _pair(trained, cfg):
    model, result = trained
    return model, cfg, result


def _inputs(nets):
    return ["--imitator", nets["imitator"], "--parser", nets["parser"],
            "--identity", nets["identity"]]


@pytest.fixture(scope="module")
def translator_run(nets, tmp_path_factory):
    """(the run directory, the JSON line) of a tiny `train-translator`."""
    out = tmp_path_factory.mktemp("translator") / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([str(a) for a in ["train-translator", *_inputs(nets), "--out", out,
                                      *SMALL]])
    assert code == 0
    return out, json.loads(buf.getvalue().strip().splitlines()[-1])


def test_train_translator_writes_a_checkpoint_that_predicts_valid_vectors(nets,
                                                                          translator_run):
    from swiftavatar.f2p.identity_train import load_identity
    from swiftavatar.f2p.translator import translate
    from swiftavatar.f2p.translator_train import load_translator_for

    out, line = translator_run
    assert line["out"] == str(out) and line["seconds"] >= 0
    assert np.isfinite(line["loss_first"]) and np.isfinite(line["loss_last"])
    schema = nets["schema"]
    translator, own, meta = load_translator_for(out, schema)
    result = meta["result"]
    assert own.fingerprint == schema.fingerprint == result["schema_fingerprint"]
    assert len(result["losses"]) == 2 and result["faces"] == 8
    assert result["image_size"] == SIZE and result["embedding_dim"] == translator.dim == 8
    assert result["inputs"]["identity"] == str(nets["identity"])
    assert meta["run_config"]["model"]["hidden"] == 16
    assert json.loads((out / "meta.json").read_text())["format"] == meta["format"]
    identity, _ = load_identity(nets["identity"])
    photos = render_split(ParserTrainConfig(size=SIZE, train_faces=20, val_faces=3), "val")[0]
    vectors = translate(translator, identity, photos, schema, SIZE)
    vectors.validate()
    assert len(vectors) == 3 and vectors.schema.fingerprint == schema.fingerprint


def test_dry_run_prints_the_resolved_config_and_bad_flags_name_themselves(nets, tmp_path,
                                                                          capsys):
    base = ["train-translator", *_inputs(nets), "--out", tmp_path / "run"]
    code, out, err = _cli([*base, *SMALL, "--identity-weight", 0.5, "--dry-run"], capsys)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["faces"] == 8 and shown["size"] == SIZE and shown["engine"] == "toon"
    assert shown["config"]["epochs"] == 2 and shown["config"]["model"]["hidden"] == 16
    assert shown["config"]["loss"]["identity_weight"] == 0.5
    assert not (tmp_path / "run").exists()
    for args, flag in ((["--epochs", 0], "--epochs"), (["--hidden", 2], "--hidden"),
                       (["--faces", 0], "--faces"), (["--size", 8], "--size"),
                       (["--identity-weight", -1], "--identity-weight"),
                       (["--lr", 0], "--lr"), (["--torch-threads", -1], "--torch-threads")):
        code, _, err = _cli([*base, *SMALL, *args], capsys)
        assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, (args, err)
    for flag in ("--imitator", "--parser", "--identity"):
        args = [*base, *SMALL]
        args[args.index(flag) + 1] = tmp_path / "nothing"
        code, _, err = _cli(args, capsys)
        assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, (flag, err)
    args = [*base, *SMALL]
    args[args.index("--imitator") + 1] = nets["parser"]          # the wrong kind of network
    code, _, err = _cli(args, capsys)
    assert code == 2 and "--imitator" in err and "imitator checkpoint" in err, err
    assert not (tmp_path / "run").exists()


def test_f2p_with_the_translator_writes_a_valid_vector_and_its_render(nets, translator_run,
                                                                      tmp_path, capsys):
    out, _ = translator_run
    base = ["f2p", nets["photo"], "--translator", out, "--identity", nets["identity"],
            "--size", 32]
    for extra, where in (([], "a"), (["--imitator", nets["imitator"]], "b")):
        code, stdout, err = _cli([*base, *extra, "--out", tmp_path / where], capsys)
        assert code == 0, err
        row = json.loads((tmp_path / where / "face.json").read_text())
        nets["schema"].vector(row["vector"]).batch().validate()
        assert row["method"] == "f2p_v2" and row["engine"] == "toon" and row["seconds"] >= 0
        assert (tmp_path / where / "face.png").is_file()
        assert json.loads(stdout.strip().splitlines()[-1]) == row
    first = json.loads((tmp_path / "a" / "face.json").read_text())
    assert first["vector"] == row["vector"]                     # one deterministic pass


def test_f2p_translator_errors_name_their_flag(nets, translator_run, tmp_path, capsys):
    from swiftavatar.f2p.translator import TranslatorCheckpointError, TranslatorTrainConfig, \
        load_translator, save_translator
    from swiftavatar.f2p.translator_train import load_translator_for
    from swiftavatar.imitator import Imitator, ImitatorConfig
    from swiftavatar.imitator.checkpoint import make_payload, save_checkpoint

    out, _ = translator_run
    base = ["f2p", nets["photo"], "--out", tmp_path / "out"]
    cases = (
        (["--translator", out], "--identity"),
        (["--translator", out, "--identity", nets["identity6"]], "--identity"),
        (["--translator", tmp_path / "nothing", "--identity", nets["identity"]],
         "--translator"),
        (["--translator", nets["parser"], "--identity", nets["identity"]], "--translator"),
        (["--imitator", nets["imitator"]], "--parser"),
    )
    for args, flag in cases:
        code, _, err = _cli([*base, *args], capsys)
        assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "out").exists()
    code, _, err = _cli([*base, "--translator", nets["parser"], "--identity",
                         nets["identity"]], capsys)
    assert "not a translator checkpoint" in err, err
    # a translator for another schema, and one that records none
    model, meta = load_translator(out)
    with get_engine("avataaars") as engine:
        other = engine.schema
    with pytest.raises(TranslatorCheckpointError, match="train the translator with this"):
        load_translator_for(out, other)
    tiny = ImitatorConfig(image_size=SIZE, channels=16, min_channels=8)
    save_checkpoint(tmp_path / "other", make_payload(Imitator.for_schema(tiny, other), None,
                                                     other, epoch=0, step=0))
    code, _, err = _cli([*base, "--translator", out, "--identity", nets["identity"],
                         "--imitator", tmp_path / "other"], capsys)
    assert code == 2 and "--translator" in err and "avataaars" in err, err
    cfg = TranslatorTrainConfig.from_dict(meta["run_config"])
    save_translator(tmp_path / "bare", model, cfg, {"losses": []})
    code, _, err = _cli([*base, "--translator", tmp_path / "bare", "--identity",
                         nets["identity"]], capsys)
    assert code == 2 and "--translator" in err and "no engine schema" in err, err
