"""A file that is not a checkpoint, or a pickled one, is one clear line (exit code 2): what
the file should be, and that pickled checkpoints are refused on purpose."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import subprocess_env
from swiftavatar.cli import main as cli_main
from swiftavatar.estimator.checkpoint import EstimatorCheckpointError, read_checkpoint
from swiftavatar.training.checkpoint import CheckpointError, load_generator

EST = "a SwiftAvatar estimator checkpoint written by `swiftavatar train-estimator`"
GEN = "a SwiftAvatar generator checkpoint written by `swiftavatar train-generator`"
REFUSED = ("refused, it holds pickled Python objects: a pickled checkpoint can run code when "
           "loaded, so none is loaded, on purpose")


class Gadget:
    """Anything that is not a tensor or a plain value: loading it would run code."""

    def __init__(self) -> None:
        self.x = 1


@pytest.fixture()
def files(tmp_path):
    out = {"junk": tmp_path / "junk.pt", "pickled": tmp_path / "pickled.pt",
           "plain_pickle": tmp_path / "plain.pkl", "truncated": tmp_path / "truncated.pt"}
    out["junk"].write_bytes(np.random.default_rng(0).bytes(2000))
    torch.save({"format": "swiftavatar.estimator.v1", "model": Gadget()}, out["pickled"])
    with open(out["plain_pickle"], "wb") as f:
        pickle.dump({"model": Gadget()}, f, protocol=4)
    torch.save({"w": torch.zeros(64)}, out["truncated"])
    data = out["truncated"].read_bytes()
    out["truncated"].write_bytes(data[:len(data) // 2])
    return out


def _one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    assert "weights_only" not in text and "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize("kind, said", [("junk", "not a loadable checkpoint ("),
                                        ("truncated", "not a loadable checkpoint ("),
                                        ("pickled", f"{REFUSED}; expected "),
                                        ("plain_pickle", f"{REFUSED}; expected ")])
def test_a_bad_or_pickled_checkpoint_says_what_is_expected(files, kind, said):
    for load, error, expected in ((read_checkpoint, EstimatorCheckpointError, EST),
                                  (load_generator, CheckpointError, GEN)):
        with pytest.raises(error) as info:
            load(files[kind])
        msg = _one_line(str(info.value))
        assert msg.startswith(f"{files[kind]}: {said}") and expected in msg, msg


@pytest.mark.parametrize("kind, words", [("junk", "not a loadable checkpoint"),
                                         ("pickled", REFUSED)])
def test_predict_with_a_bad_model_is_one_line_exit_2(files, tmp_path, kind, words):
    image = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    proc = subprocess.run([sys.executable, "-m", "swiftavatar", "predict", "--model",
                           str(files[kind]), "--out", str(tmp_path / "p"), str(image)],
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert line.startswith("swiftavatar predict: error: ") and words in line and EST in line
    assert not (tmp_path / "p").exists() or not os.listdir(tmp_path / "p")


def test_correspondence_with_a_pickled_generator_is_one_line_exit_2(files, capsys):
    rc = cli_main(["correspondence", "--g-avatar", str(files["pickled"]), "--g-real",
                   str(files["junk"])])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"swiftavatar correspondence: error: --g-avatar: {files['pickled']}: "
                           f"{REFUSED}; expected {GEN}"), line


def test_trunk_and_lpips_weight_files_get_the_same_clear_errors(files, tmp_path):
    """A user's estimator trunk or LPIPS backbone file that is junk or pickled: one line
    saying what the file should be, not torch's advice to pass weights_only=False."""
    from swiftavatar.engines.toon_schema import SCHEMA
    from swiftavatar.estimator.model import EstimatorConfig
    from swiftavatar.estimator.weights import build_estimator, load_backbone
    from swiftavatar.metrics.lpips_offline import build_lpips

    model = build_estimator(EstimatorConfig(input_size=64, backbone="efficientnet_lite0",
                                            pretrained=None), SCHEMA)
    for kind, words in (("junk", "not a loadable checkpoint"), ("pickled", REFUSED)):
        with pytest.raises(ValueError, match=words) as lp:
            build_lpips("vgg", files[kind], hub_dir=tmp_path / "hub")
        assert "torchvision's vgg" in str(lp.value)
        with pytest.raises(ValueError, match=words) as trunk:
            load_backbone(model, str(files[kind]))
        assert "efficientnet_lite0 trunk's ImageNet weights" in str(trunk.value)
        for err in (lp.value, trunk.value):
            assert "weights_only" not in str(err) and "\n" not in str(err)
