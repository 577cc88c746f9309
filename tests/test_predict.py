"""`swiftavatar predict`: vectors and renders for good images, every bad one reported."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from swiftavatar.cli import main as cli_main
from swiftavatar.engines.registry import get_engine
from swiftavatar.engines.schema import AvatarVector
from swiftavatar.estimator import EstimatorConfig
from swiftavatar.estimator.checkpoint import make_payload, save_checkpoint
from swiftavatar.estimator.weights import build_estimator


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An (untrained) toon estimator checkpoint: predict must answer with valid vectors."""
    schema = get_engine("toon").schema
    torch.manual_seed(0)
    model = build_estimator(EstimatorConfig(input_size=32, head_hidden=16, pretrained=None),
                            schema)
    d = tmp_path_factory.mktemp("est") / "checkpoint_0000001"
    save_checkpoint(d, make_payload(model=model, optimizer=None, schema=schema, epoch=1, step=1,
                                    run_config={"test": True}))
    return d


@pytest.fixture()
def faces(tmp_path):
    from swiftavatar.faces import face_images

    images, _ = face_images(0, range(2), 96)
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"face{i}.jpg")
        Image.fromarray(im).save(paths[-1])
    return paths


def test_predict_answers_good_images_and_reports_bad_ones(model_dir, faces, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(gray)
    out = tmp_path / "pred"
    rc = cli_main(["predict", str(faces[0]), str(bad), str(faces[1]), str(gray),
                   "--model", str(model_dir), "--out", str(out), "--size", "64"])
    cap = capsys.readouterr()
    assert rc == 1                                       # some inputs were bad
    lines = [json.loads(x) for x in cap.out.splitlines()]
    assert [x["image"] for x in lines] == [str(faces[0]), str(faces[1])]
    schema = get_engine("toon").schema
    for row in lines:
        AvatarVector.from_dict(schema, row["vector"])   # decodes to a valid toon vector
        assert Image.open(row["render"]).size == (64, 64)
    errors = json.loads((out / "errors.json").read_text())
    assert [e["image"] for e in errors] == [str(bad), str(gray)]
    assert "grayscale" in errors[1]["error"] and "gray.png" in cap.err
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 2
    assert (out / "face0.json").is_file() and (out / "face1.png").is_file()


def test_predict_all_good_exits_0(model_dir, faces, tmp_path):
    assert cli_main(["predict", *map(str, faces), "--model", str(model_dir), "--out",
                     str(tmp_path / "p"), "--size", "32"]) == 0


@pytest.mark.parametrize("flags, words", [
    (["--model", "nope"], "--model"),
    (["--size", "4"], "--size must be >= 16"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--engine", "nope"], "--engine: unknown engine 'nope'"),
    (["--engine", "avataaars"], "--engine: avataaars has schema"),
])
def test_predict_bad_flags_exit_2(flags, words, model_dir, faces, tmp_path, capsys):
    args = ["predict", str(faces[0]), "--model", str(model_dir), "--out", str(tmp_path / "p")]
    if flags[0] == "--model":
        args[args.index("--model") + 1] = str(tmp_path / flags[1])
    else:
        args += flags
    assert cli_main(args) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
