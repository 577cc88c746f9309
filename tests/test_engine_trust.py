"""A file may name only a registered engine: a checkpoint whose stored engine name is an
import target or a gRPC address is refused before anything is imported, called or contacted."""
from __future__ import annotations

import dataclasses
import tempfile

import pytest
import torch

from swiftavatar.cli import main as cli_main
from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator import EstimatorConfig
from swiftavatar.estimator.checkpoint import make_payload, save_checkpoint
from swiftavatar.estimator.weights import build_estimator


def _checkpoint(tmp_path, engine_name: str):
    """A tiny toon estimator checkpoint whose stored schema names `engine_name`."""
    schema = dataclasses.replace(get_engine("toon").schema, engine=engine_name)
    torch.manual_seed(0)
    model = build_estimator(EstimatorConfig(input_size=32, head_hidden=16, pretrained=None),
                            schema)
    d = tmp_path / "checkpoint_0000001"
    save_checkpoint(d, make_payload(model=model, optimizer=None, schema=schema, epoch=1, step=1,
                                    run_config={"test": True}))
    return d


@pytest.mark.parametrize("name", ["tempfile:mkdtemp", "grpc://127.0.0.1:9"])
def test_predict_refuses_an_engine_a_checkpoint_names_by_import_or_address(
        name, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from swiftavatar.faces import face_images

    model = _checkpoint(tmp_path, name)
    image = tmp_path / "face.jpg"
    Image.fromarray(face_images(0, range(1), 64)[0][0]).save(image)
    calls = tmp_path / "mkdtemp_calls"          # tempfile.mkdtemp would make a folder here
    calls.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(calls))
    rc = cli_main(["predict", str(image), "--model", str(model), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--engine" in err and name in err and "registered" in err
    assert list(calls.iterdir()) == []          # the target was never called
    assert not (tmp_path / "p").exists()


def test_check_registered_engine_allows_registered_names_only():
    from swiftavatar.engines.registry import UntrustedEngineError, check_registered_engine

    check_registered_engine("toon", "card.json")
    for name in ("tempfile:mkdtemp", "grpc://10.0.0.1:50051"):
        with pytest.raises(UntrustedEngineError, match="--engine"):
            check_registered_engine(name, "card.json")
