"""`swiftavatar predict`: vectors and renders for good images, every bad one reported."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
from swiftavatar.face_align import mediapipe_available


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


def test_predict_answers_the_batch_around_a_decompression_bomb(model_dir, faces, tmp_path,
                                                               capsys):
    from test_selfies import write_png_header

    bomb = write_png_header(tmp_path / "bomb.png", 20000, 20000)
    out = tmp_path / "pred"
    rc = cli_main(["predict", str(faces[0]), str(bomb), str(faces[1]), "--align", "none",
                   "--model", str(model_dir), "--out", str(out), "--size", "32"])
    cap = capsys.readouterr()
    assert rc == 1 and "Traceback" not in cap.err
    assert [json.loads(x)["image"] for x in cap.out.splitlines()] == [str(faces[0]),
                                                                       str(faces[1])]
    errors = json.loads((out / "errors.json").read_text())
    assert [e["image"] for e in errors] == [str(bomb)] and "too many pixels" in errors[0]["error"]


def test_predict_output_names_never_collide(model_dir, faces, tmp_path, capsys):
    face = Image.open(faces[0])
    inputs = []
    for name in ("errors.jpg", "a.jpg", "a.png", "a-2.jpg", "A.jpg", "a.input.jpg",
                 "predictions.jpg"):
        face.save(tmp_path / name)
        inputs.append(str(tmp_path / name))
    out = tmp_path / "pred"
    assert cli_main(["predict", *inputs, "--align", "none", "--model", str(model_dir),
                     "--out", str(out), "--size", "32"]) == 0
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["image"] for r in rows] == inputs
    written = [Path(r[k]).name.casefold() for r in rows for k in ("render", "input")]
    written += [Path(r["render"]).with_suffix(".json").name.casefold() for r in rows]
    assert len(set(written)) == len(written)                     # no two images share a file
    assert not {"errors.json", "predictions.jsonl"} & set(written)
    assert json.loads((out / "errors.json").read_text()) == []
    for r in rows:                                               # each file is its own image's
        assert json.loads(Path(r["render"]).with_suffix(".json").read_text())["image"] \
            == r["image"]
        assert Path(r["render"]).is_file() and Path(r["input"]).is_file()


def test_predict_all_good_exits_0(model_dir, faces, tmp_path):
    assert cli_main(["predict", *map(str, faces), "--model", str(model_dir), "--out",
                     str(tmp_path / "p"), "--size", "32"]) == 0


@pytest.mark.parametrize("flags, words", [
    (["--model", "nope"], "--model"),
    (["--size", "4"], "--size must be >= 16"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--engine", "nope"], "--engine: unknown engine 'nope'"),
    (["--engine", "avataaars"], "--engine: avataaars has schema"),
    (["--min-face-confidence", "1.5"], "--min-face-confidence must be in (0, 1)"),
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


ASTRONAUT = Path(__file__).parent / "data" / "astronaut.jpg"


def test_predict_unknown_align_mode_names_the_choices(model_dir, faces, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["predict", str(faces[0]), "--model", str(model_dir), "--align", "dlib"])
    assert exc.value.code == 2
    assert "--align: invalid choice: 'dlib' (choose from" in capsys.readouterr().err


@pytest.mark.skipif(not mediapipe_available(), reason="mediapipe not installed")
def test_predict_finds_the_face_in_a_photo_and_reports_a_photo_without_one(model_dir, tmp_path,
                                                                            capsys):
    sky = tmp_path / "sky.png"
    yy, xx = np.mgrid[0:120, 0:160]
    Image.fromarray(np.stack([xx, yy, np.full_like(xx, 200)], -1).astype(np.uint8)).save(sky)
    out = tmp_path / "pred"
    rc = cli_main(["predict", str(ASTRONAUT), str(sky), "--model", str(model_dir), "--out",
                   str(out), "--size", "32"])
    cap = capsys.readouterr()
    assert rc == 1
    (row,) = [json.loads(x) for x in cap.out.splitlines()]
    assert row["image"] == str(ASTRONAUT) and row["align"] == "mediapipe"
    assert row["face_score"] > 0.8 and len(row["face_box"]) == 4
    assert Image.open(row["input"]).size == (32, 32)       # the crop the estimator saw
    (err,) = json.loads((out / "errors.json").read_text())
    assert err["image"] == str(sky) and "no face found" in err["error"]
    assert "--align none" in err["error"] and "sky.png: no face found" in cap.err
    # an image that is already a head crop can skip detection: then it is answered
    assert cli_main(["predict", str(sky), "--model", str(model_dir), "--out",
                     str(tmp_path / "p2"), "--size", "32", "--align", "none"]) == 0


@pytest.mark.slow
def test_predict_without_mediapipe_refuses_align_mediapipe_and_auto_warns(model_dir, faces,
                                                                         tmp_path):
    """In a fresh interpreter where mediapipe cannot be imported (as on a machine without it)."""
    prelude = "import sys; sys.modules['mediapipe'] = None; from swiftavatar.cli import main; "
    base = ["predict", str(faces[0]), "--model", str(model_dir), "--size", "32"]
    runs = {}
    for align in ("mediapipe", "auto"):
        args = base + ["--out", str(tmp_path / align), "--align", align]
        runs[align] = subprocess.run(
            [sys.executable, "-c", prelude + f"sys.exit(main({args!r}))"],
            capture_output=True, text=True, timeout=240)
    assert runs["mediapipe"].returncode == 2
    assert "--align mediapipe: mediapipe is not installed: pip install --no-deps " \
           "mediapipe==0.10.21" in runs["mediapipe"].stderr
    assert not (tmp_path / "mediapipe").exists()
    assert runs["auto"].returncode == 0, runs["auto"].stderr[-2000:]
    assert "mediapipe is not installed, so faces are not detected" in runs["auto"].stderr
    assert json.loads(runs["auto"].stdout.splitlines()[0])["align"] == "none"
