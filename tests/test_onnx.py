"""ONNX export and ONNX Runtime: the shipped estimators and a tiny random one answer as in torch
(within 1e-4, same decoded vectors) at batch 1 and 5; the export is cached by the checkpoint's
sha256 and reused; a junk file is one clear error; `swiftavatar export-onnx`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from swiftavatar.checkset.records import load_records
from swiftavatar.cli import main as cli_main
from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator.checkpoint import make_payload, save_checkpoint
from swiftavatar.estimator.model import AvatarEstimator, EstimatorConfig
from swiftavatar.estimator.onnx_runtime import OnnxEstimator, OnnxModelError, load_onnx
from swiftavatar.estimator.predict import predict_images, predict_outputs
from swiftavatar.estimator.runtime import cached_export_path, load_runtime, pick_runtime
from swiftavatar.selfies import load_face_image, resize_square

TOL = 1e-4


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A random ResNet-18 estimator at 32 px with the gray-world colour norm and linear heads,
    as a checkpoint directory."""
    schema = get_engine("toon").schema
    torch.manual_seed(5)
    model = AvatarEstimator.for_schema(EstimatorConfig(input_size=32, head_hidden=0,
                                                       pretrained=None, color_norm="grayworld"),
                                       schema)
    with torch.no_grad():                 # BatchNorm statistics that are not the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    d = tmp_path_factory.mktemp("tiny") / "ckpt"
    save_checkpoint(d, make_payload(model=model, optimizer=None, schema=schema, epoch=0, step=0,
                                    run_config={}))
    return d


@pytest.fixture(scope="module")
def tiny_export(tiny, cache) -> dict:
    """The tiny estimator's first load through ONNX into the module's cache: its "onnx" meta."""
    return load_runtime(str(tiny), "onnx", cache_dir=cache)[2]["onnx"]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Five 96-px images (resized to each model's input): the two check-set photos, their
    mirror images and one of noise."""
    photos = [resize_square(load_face_image(str(r.path)), 96) for r in load_records()]
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    return np.stack(photos + [p[:, ::-1] for p in photos] + [noise])


@pytest.mark.parametrize("spec", ["pretrained:toon", "pretrained:avataaars", "tiny"])
def test_onnx_runtime_answers_as_torch_at_batch_1_and_5(spec, tiny, tiny_export, cache, images):
    spec = str(tiny) if spec == "tiny" else spec
    onnx_model, schema, meta = load_runtime(spec, "onnx", cache_dir=cache)
    torch_model, schema_t, _ = load_runtime(spec, "torch")
    assert isinstance(onnx_model, OnnxEstimator) and meta["runtime"] == "onnx"
    assert schema.fingerprint == schema_t.fingerprint == meta["schema_fingerprint"]
    assert onnx_model.meta["input_size"] == str(torch_model.config.input_size)
    assert onnx_model.meta["color_norm"] == torch_model.config.color_norm
    want = predict_outputs(torch_model, images, batch_size=5)
    for batch in (1, 5):
        got = predict_outputs(onnx_model, images, batch_size=batch)
        assert got["cont"].shape == want["cont"].shape
        assert torch.allclose(got["cont"], want["cont"], rtol=0, atol=TOL)
        assert len(got["logits"]) == len(want["logits"]) == len(schema.face_discrete)
        for g, w in zip(got["logits"], want["logits"]):
            assert g.shape == w.shape and torch.allclose(g, w, rtol=0, atol=TOL)
        vo = predict_images(onnx_model, schema, images, batch_size=batch)
        vt = predict_images(torch_model, schema, images, batch_size=batch)
        np.testing.assert_array_equal(vo.discrete, vt.discrete)
        np.testing.assert_allclose(vo.continuous, vt.continuous, rtol=0, atol=1e-3)


def test_the_export_is_cached_by_sha256_and_a_damaged_cache_file_is_replaced(tiny, tiny_export,
                                                                              cache):
    path = Path(tiny_export["path"])
    assert tiny_export["exported"] and path.is_file()
    assert sorted(p.name for p in cache.iterdir() if "opset" not in p.name) == []  # no temp file
    assert path == cached_export_path(path.name.split("-")[1], cache)
    stamp = path.stat().st_mtime_ns
    again = load_runtime(str(tiny), "onnx", cache_dir=cache)[2]["onnx"]
    assert again["path"] == str(path) and not again["exported"]
    assert path.stat().st_mtime_ns == stamp
    path.write_bytes(b"not onnx")                                            # damaged
    third = load_runtime(str(tiny), "onnx", cache_dir=cache)[2]["onnx"]
    assert third["exported"] and path.stat().st_size > 1000
    model, _, _ = load_runtime(str(tiny), "onnx", cache_dir=cache)
    assert model.meta["checkpoint_sha256"] == path.name.split("-")[1]


def test_a_junk_or_foreign_onnx_file_is_one_clear_error(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage, not a protobuf" * 10)
    with pytest.raises(OnnxModelError, match=r"junk.onnx: not a readable ONNX model .*"
                                             r"swiftavatar export-onnx"):
        load_onnx(junk)
    import onnx

    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]),
              tmp_path / "relu.onnx")
    with pytest.raises(OnnxModelError, match="relu.onnx: an ONNX model, but not an estimator"):
        OnnxEstimator(tmp_path / "relu.onnx")
    with pytest.raises(OnnxModelError, match="no such file"):
        OnnxEstimator(tmp_path / "missing.onnx")


def test_runtime_choice():
    assert pick_runtime("auto", "cpu") == "onnx"
    assert pick_runtime("auto", "cuda") == "torch"
    with pytest.raises(ValueError, match="runtime onnx runs on the CPU only"):
        pick_runtime("onnx", "cuda")
    with pytest.raises(ValueError, match="runtime must be one of"):
        pick_runtime("tensorrt", "cpu")


def test_export_onnx_command(tiny, tmp_path, capsys):
    out = tmp_path / "est.onnx"
    assert cli_main(["export-onnx", "--model", str(tiny), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "opset 20" in printed and "within 0.0001" in printed
    model, schema, meta = load_onnx(out)
    assert schema.engine == "toon" and meta["checkpoint_sha256"]
    assert cli_main(["export-onnx", "--model", str(tmp_path / "nope"), "--out",
                     str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model" in err and not (tmp_path / "x.onnx").exists()
    assert cli_main(["export-onnx", "--model", str(tiny), "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
