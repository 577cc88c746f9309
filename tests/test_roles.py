"""Face and style roles: a style parameter (background, clothing) is never predicted; the
designer, the estimator's decoding and `predict` take it from the engine's defaults or from
a vector the user gives."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from swiftavatar.cli import main as cli_main
from swiftavatar.engines.avataaars import build_schema as avataaars_schema
from swiftavatar.engines.proto import schema_from_proto, schema_to_proto
from swiftavatar.engines.schema import DiscreteParam, EngineSchema, SchemaError
from swiftavatar.engines.toon_schema import SCHEMA as TOON
from swiftavatar.estimator.checkpoint import make_payload, save_checkpoint
from swiftavatar.estimator.data import decode_batch, open_source
from swiftavatar.estimator.model import AvatarEstimator, EstimatorConfig, decode, head_layout
from swiftavatar.evaluation import EvalSet, design
from synthetic import write_toon_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TOON_STYLE = ["clothing", "clothing_color", "background"]


def test_engines_declare_roles_and_roles_do_not_change_the_fingerprint():
    assert TOON.style_names == TOON_STYLE
    assert avataaars_schema().style_names == ["clothing", "clothing_graphic", "clothing_color",
                                              "background_color"]
    all_face = dataclasses.replace(TOON, discrete=tuple(
        dataclasses.replace(p, role="face") for p in TOON.discrete))
    assert all_face.fingerprint == TOON.fingerprint            # same vectors, same decoding
    again = EngineSchema.from_dict(TOON.to_dict())
    assert again == TOON and again.style_names == TOON_STYLE
    legacy = TOON.to_dict()
    for p in legacy["discrete"]:
        del p["role"]
    assert EngineSchema.from_dict(legacy).style_names == []    # older files: all face
    with pytest.raises(SchemaError, match="role must be one of"):
        DiscreteParam("x", ("a",), 0, "", "decor")


def test_the_grpc_protocol_carries_roles():
    back = schema_from_proto(schema_to_proto(TOON))
    assert back == TOON and back.style_names == TOON_STYLE


def test_the_estimator_has_no_head_for_a_style_parameter():
    model = AvatarEstimator.for_schema(EstimatorConfig(input_size=32, head_hidden=8,
                                                       pretrained=None), TOON)
    n_c, options = head_layout(TOON)
    face = [p for p in TOON.discrete if p.role == "face"]
    assert model.num_options == options == tuple(len(p.options) for p in face)
    assert len(model.num_options) == TOON.n_discrete - 3 and n_c == TOON.n_continuous


def test_decoding_takes_style_from_defaults_or_a_given_vector():
    torch.manual_seed(0)
    n_c, options = head_layout(TOON)
    logits = [torch.randn(4, k) for k in options]
    outputs = {"cont": torch.rand(4, n_c), "logits": logits}
    vec = decode(outputs, TOON)
    vec.validate()
    names = [p.name for p in TOON.discrete]
    default = TOON.default_vector()
    for name in TOON_STYLE:
        j = names.index(name)
        assert (vec.discrete[:, j] == default.discrete[j]).all()
    face_j = [j for j, p in enumerate(TOON.discrete) if p.role == "face"]
    for lg, j in zip(logits, face_j):
        assert (vec.discrete[:, j] == lg.argmax(1).numpy()).all()
    mine = TOON.vector({"background": "slate", "clothing": "hoodie"}, fill_defaults=True)
    styled = decode(outputs, TOON, base=mine.batch())
    assert (styled.discrete[:, names.index("background")] == mine.discrete[
        names.index("background")]).all()
    np.testing.assert_array_equal(np.delete(styled.discrete, [names.index(n) for n in
                                                             TOON_STYLE], 1),
                                  np.delete(vec.discrete, [names.index(n) for n in TOON_STYLE],
                                            1))


def test_the_designer_leaves_style_at_the_defaults_unless_asked():
    attrs = EvalSet(count=12).attributes()
    face_only, full = design(attrs, TOON), design(attrs, TOON, keep_style=True)
    names = [p.name for p in TOON.discrete]
    default = TOON.default_vector()
    j = names.index("background")
    assert (face_only.discrete[:, j] == default.discrete[j]).all()
    assert len(set(full.discrete[:, names.index("clothing_color")])) > 1   # designer's own
    keep = [k for k, p in enumerate(TOON.discrete) if p.role == "face"]
    np.testing.assert_array_equal(face_only.discrete[:, keep], full.discrete[:, keep])


def test_training_targets_are_face_parameters_only(tmp_path):
    out = write_toon_pairs(tmp_path / "pairs", n=4, shard_size=4, aug=1)
    import pyarrow.parquet as pq

    source = open_source(str(out))
    batch = pq.read_table(source.files[0], columns=source.columns("realistic_png")).to_pydict()
    got = decode_batch(batch, schema=source.schema, image_column="realistic_png")
    assert got["disc"].shape == (8, TOON.n_discrete - 3)
    assert got["cont"].shape == (8, TOON.n_continuous)


def test_predict_takes_style_from_a_users_vector(tmp_path):
    from PIL import Image

    from swiftavatar.estimator.weights import build_estimator
    from swiftavatar.faces import face_images

    torch.manual_seed(0)
    model = build_estimator(EstimatorConfig(input_size=32, head_hidden=8, pretrained=None),
                            TOON)
    ckpt = tmp_path / "est" / "checkpoint_0000001"
    save_checkpoint(ckpt, make_payload(model=model, optimizer=None, schema=TOON, epoch=1,
                                       step=1, run_config={"test": True}))
    images, _ = face_images(0, range(2), 64)
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(im).save(paths[-1])
    style = tmp_path / "mine.json"
    style.write_text(json.dumps({"vector": {"background": "lemon", "clothing": "jacket"}}))
    out = tmp_path / "pred"
    rc = cli_main(["predict", *map(str, paths), "--model", str(ckpt), "--out", str(out),
                   "--size", "32", "--align", "none", "--style", str(style)])
    assert rc == 0
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["vector"]["background"] for r in rows] == ["lemon", "lemon"]
    assert [r["vector"]["clothing"] for r in rows] == ["jacket", "jacket"]
    assert [r["vector"]["clothing_color"] for r in rows] == ["blue", "blue"]   # default
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"background": "mars"}))
    assert cli_main(["predict", str(paths[0]), "--model", str(ckpt), "--out", str(out),
                     "--align", "none", "--style", str(bad)]) == 2
