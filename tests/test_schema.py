"""Engine schemas, avatar vectors, their conversions, and seeded sampling with priors."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from swiftavatar.engines.schema import (AvatarVector, ContinuousParam, DiscreteParam,
                                        EngineSchema, InvalidVectorError, Prior, SchemaError,
                                        VectorBatch, iter_param_docs, row_errors)


@pytest.fixture
def schema() -> EngineSchema:
    return EngineSchema(
        engine="demo", version="2",
        continuous=(ContinuousParam("jaw", -1.0, 1.0, 0.0, "jaw width"),
                    ContinuousParam("eye_size", 0.5, 2.0, 1.0)),
        discrete=(DiscreteParam("hair", ("short", "long", "bald", "mohawk"), 1),
                  DiscreteParam("glasses", ("none", "round"), 0)),
        supports_masks=True)


def good(schema: EngineSchema) -> dict:
    return {"jaw": 0.25, "eye_size": 1.5, "hair": "bald", "glasses": "round"}


# ---- schema definitions --------------------------------------------------------------------
@pytest.mark.parametrize("make, words", [
    (lambda: ContinuousParam("a", 1.0, 1.0, 1.0), "need finite low < high"),
    (lambda: ContinuousParam("a", 2.0, 1.0, 1.5), "need finite low < high"),
    (lambda: ContinuousParam("a", 0.0, math.inf, 1.0), "need finite low < high"),
    (lambda: ContinuousParam("a", 0.0, 1.0, 2.0), "default 2.0 outside"),
    (lambda: DiscreteParam("d", ()), "needs at least one option"),
    (lambda: DiscreteParam("d", ("x", "x")), "option labels repeat"),
    (lambda: DiscreteParam("d", ("x", "y"), 2), "default index 2 outside 0..1"),
    (lambda: EngineSchema("e", "1", (), ()), "has no parameters"),
    (lambda: EngineSchema("e", "1", (ContinuousParam("a", 0, 1, 0),),
                          (DiscreteParam("a", ("x",)),)), "parameter names repeat: ['a']"),
])
def test_malformed_schemas_are_refused(make, words):
    with pytest.raises(SchemaError) as e:
        make()
    assert words in str(e.value)


def test_sizes_and_names(schema):
    assert (schema.n_continuous, schema.n_discrete, schema.num_options) == (2, 2, (4, 2))
    assert schema.onehot_dim == 2 + 4 + 2
    assert schema.param_names == ["jaw", "eye_size", "hair", "glasses"]
    assert schema.param("hair").options[0] == "short"
    with pytest.raises(InvalidVectorError, match="unknown parameter 'nose'.*known: jaw"):
        schema.param("nose")


def test_schema_json_round_trip_and_fingerprint(schema):
    back = EngineSchema.from_json(schema.to_json())
    assert back == schema and back.fingerprint == schema.fingerprint
    d = schema.to_dict()
    d["continuous"][0]["doc"] = "another description"
    assert EngineSchema.from_dict(d).fingerprint == schema.fingerprint  # docs do not count
    d["continuous"][0]["high"] = 3.0
    assert EngineSchema.from_dict(d).fingerprint != schema.fingerprint
    d = schema.to_dict()
    d["discrete"][0]["options"] = ["short", "long", "bald", "afro"]
    assert EngineSchema.from_dict(d).fingerprint != schema.fingerprint


def test_schema_dict_errors(schema):
    d = schema.to_dict()
    del d["version"]
    with pytest.raises(SchemaError, match="missing the field 'version'"):
        EngineSchema.from_dict(d)
    d = {**schema.to_dict(), "format": 99}
    with pytest.raises(SchemaError, match="format 99 is not supported"):
        EngineSchema.from_dict(d)


def test_param_docs_mention_every_parameter(schema):
    text = "\n".join(iter_param_docs(schema))
    assert schema.fingerprint in text and "masks: yes" in text
    for name in schema.param_names:
        assert name in text
    assert "4 options: short, long, bald, mohawk" in text


# ---- one vector: validation ----------------------------------------------------------------
def test_valid_vector_and_access(schema):
    v = schema.vector(good(schema))
    assert v["jaw"] == 0.25 and v["hair"] == "bald" and v["glasses"] == "round"
    assert v.continuous.dtype == np.float32 and v.discrete.dtype == np.int64
    assert v.discrete.tolist() == [2, 1]
    assert schema.vector({**good(schema), "hair": 3})["hair"] == "mohawk"  # index accepted
    with pytest.raises(InvalidVectorError, match="unknown parameter 'nose'"):
        v["nose"]


def test_defaults(schema):
    d = schema.default_vector()
    assert d.to_dict() == {"jaw": 0.0, "eye_size": 1.0, "hair": "long", "glasses": "none"}
    partial = schema.vector({"jaw": 0.5}, fill_defaults=True)
    assert partial.to_dict() == {**d.to_dict(), "jaw": 0.5}


@pytest.mark.parametrize("change, words", [
    ({"jaw": float("nan")}, "parameter 'jaw': value is NaN"),
    ({"jaw": 1.5}, "parameter 'jaw': value 1.5 is out of range [-1.0, 1.0]"),
    ({"eye_size": 0.49}, "parameter 'eye_size': value 0.49 is out of range"),
    ({"jaw": float("inf")}, "out of range"),
    ({"jaw": 10 ** 400}, "parameter 'jaw': value is out of range"),  # no float holds it
    ({"hair": "afro"}, "parameter 'hair': unknown option 'afro'; valid options: short, long"),
    ({"hair": 4}, "parameter 'hair': option index 4 is out of range 0..3"),
    ({"hair": -1}, "option index -1 is out of range"),
    ({"jaw": "0.5"}, "parameter 'jaw': expected a number in [-1.0, 1.0], got str"),
    ({"jaw": True}, "parameter 'jaw': expected a number"),
    ({"jaw": None}, "expected a number"),
    ({"hair": 1.0}, "parameter 'hair': expected an option label (one of 4), got float"),
    ({"hair": False}, "expected an option label"),
    ({"hair": ["short"]}, "expected an option label"),
    ({"nose": 1}, "unknown parameter 'nose' for engine 'demo' (schema 2); known: jaw"),
])
def test_every_bad_value_is_named(schema, change, words):
    with pytest.raises(InvalidVectorError) as e:
        schema.vector({**good(schema), **change})
    assert words in str(e.value)


def test_missing_parameter_and_wrong_container(schema):
    values = good(schema)
    del values["eye_size"]
    with pytest.raises(InvalidVectorError, match="missing parameter 'eye_size'.*1 missing"):
        schema.vector(values)
    with pytest.raises(InvalidVectorError, match="must be a mapping.*got list"):
        schema.vector([0.1, 0.2])  # type: ignore[arg-type]


def test_array_form_checks_length_and_values(schema):
    with pytest.raises(InvalidVectorError, match="wrong length: 3 continuous values.*has 2"):
        AvatarVector(schema, np.zeros(3), np.zeros(2))
    with pytest.raises(InvalidVectorError, match="wrong length: 1 discrete values.*has 2"):
        AvatarVector(schema, np.zeros(2), np.zeros(1))
    with pytest.raises(InvalidVectorError, match="'eye_size': value 0 is out of range"):
        AvatarVector(schema, np.zeros(2), np.zeros(2))
    with pytest.raises(InvalidVectorError, match="continuous part has shape \\(3, 3\\)"):
        schema.validate_arrays(np.zeros((3, 3)), np.zeros((3, 2)))
    with pytest.raises(InvalidVectorError, match="discrete part has shape \\(3,\\)"):
        schema.validate_arrays(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(InvalidVectorError, match="3 rows but discrete part has 2"):
        schema.validate_arrays(np.ones((3, 2)), np.zeros((2, 2)))
    cont = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    disc = np.array([[0, 0], [0, 5]])
    with pytest.raises(InvalidVectorError, match="row 1: parameter 'glasses': option index 5"):
        schema.validate_arrays(cont, disc)


def test_row_errors_name_each_bad_row(schema):
    cont = np.array([[0.0, 1.0], [np.nan, 1.0], [0.0, 9.0], [0.0, 1.0]], np.float32)
    disc = np.array([[0, 0], [0, 0], [0, 0], [7, 0]])
    msgs = row_errors(schema, cont, disc)
    assert msgs[0] == ""
    assert msgs[1] == "parameter 'jaw': value is NaN"
    assert msgs[2].startswith("parameter 'eye_size': value 9 is out of range")
    assert msgs[3] == "parameter 'hair': option index 7 is out of range 0..3"


def test_vector_equality(schema):
    a, b = schema.vector(good(schema)), schema.vector(good(schema))
    assert a == b
    assert a != schema.vector({**good(schema), "jaw": 0.0})
    other = EngineSchema("demo", "3", schema.continuous, schema.discrete[:1])
    assert a != other.vector({"jaw": 0.25, "eye_size": 1.5, "hair": "bald"})


# ---- conversions -----------------------------------------------------------------------
def test_json_round_trip_both_forms(schema):
    v = schema.vector(good(schema))
    doc = json.loads(v.to_json())
    assert doc == {"engine": "demo", "schema_version": "2", "params": good(schema)}
    assert AvatarVector.from_json(schema, v.to_json()) == v
    assert AvatarVector.from_json(schema, json.dumps(good(schema))) == v  # plain params dict
    assert AvatarVector.from_json(schema, v.to_json().encode()) == v
    with pytest.raises(InvalidVectorError, match="for engine 'other', not 'demo'"):
        AvatarVector.from_json(schema, json.dumps({"engine": "other", "params": good(schema)}))
    with pytest.raises(InvalidVectorError, match="does not parse"):
        AvatarVector.from_json(schema, "{not json")
    with pytest.raises(InvalidVectorError, match="value is NaN"):
        AvatarVector.from_json(schema, json.dumps({**good(schema), "jaw": float("nan")}))


def test_onehot_and_normalised_round_trip(schema):
    batch = schema.sample(3, np.arange(50))
    norm = batch.normalized_continuous()  # (50, 2)
    assert norm.shape == (50, 2) and norm.min() >= 0 and norm.max() <= 1
    flat = batch.onehot()  # (50, 8)
    assert flat.shape == (50, schema.onehot_dim) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat[:, 2:6].sum(1), 1)
    np.testing.assert_array_equal(flat[:, 2:6].argmax(1), batch.discrete[:, 0])
    back = VectorBatch.from_onehot(schema, flat)
    np.testing.assert_allclose(back.continuous, batch.continuous, atol=1e-6)
    np.testing.assert_array_equal(back.discrete, batch.discrete)
    back.validate()
    # scores instead of one-hots decode by argmax; continuous outputs are clipped into range
    scores = flat.copy()
    scores[:, 0] = 7.0
    scores[:, 2:6] = np.array([0.1, 0.2, 3.0, -1.0])
    dec = VectorBatch.from_onehot(schema, scores)
    assert set(dec.continuous[:, 0].tolist()) == {1.0} and set(dec.discrete[:, 0]) == {2}
    with pytest.raises(InvalidVectorError, match="expects \\(N, 8\\)"):
        VectorBatch.from_onehot(schema, flat[:, :7])


def test_tensor_round_trip(schema):
    torch = pytest.importorskip("torch")
    batch = schema.sample(4, np.arange(20))
    cont, disc = batch.to_tensors()
    assert cont.dtype == torch.float32 and cont.shape == (20, 2)
    assert disc.dtype == torch.int64 and disc.shape == (20, 2)
    back = VectorBatch.from_normalized(schema, cont.numpy(), disc.numpy())
    np.testing.assert_allclose(back.continuous, batch.continuous, atol=1e-6)
    np.testing.assert_array_equal(back.discrete, batch.discrete)


def test_arrow_and_numpy_columns_round_trip(schema):
    batch = schema.sample(5, np.arange(12))
    cols = batch.to_arrow_columns()
    assert list(cols) == ["c.jaw", "c.eye_size", "d.hair", "d.glasses"]
    assert cols["c.jaw"].type == pa.float32() and cols["d.hair"].type == pa.int32()
    table = pa.table(cols)
    back = VectorBatch.from_columns(schema, {n: table.column(n) for n in table.column_names})
    np.testing.assert_array_equal(back.continuous, batch.continuous)
    np.testing.assert_array_equal(back.discrete, batch.discrete)
    again = VectorBatch.from_columns(schema, batch.to_columns())
    np.testing.assert_array_equal(again.discrete, batch.discrete)
    with pytest.raises(InvalidVectorError, match="columns missing.*d.glasses"):
        VectorBatch.from_columns(schema, {k: v for k, v in cols.items() if k != "d.glasses"})


def test_batch_helpers(schema):
    vs = [schema.vector(good(schema)), schema.default_vector()]
    batch = VectorBatch.stack(vs)
    assert len(batch) == 2 and batch[1] == vs[1] and list(batch) == vs
    assert batch.select([1]).discrete.tolist() == [[1, 0]]
    assert vs[0].batch().continuous.shape == (1, 2)
    with pytest.raises(ValueError, match="empty list"):
        VectorBatch.stack([])


# ---- sampling and priors ---------------------------------------------------------------
def test_sample_i_depends_only_on_seed_and_i(schema):
    full = schema.sample(42, np.arange(100))
    part = schema.sample(42, [97, 3, 50])  # any order, any batch
    np.testing.assert_array_equal(part.continuous, full.continuous[[97, 3, 50]])
    np.testing.assert_array_equal(part.discrete, full.discrete[[97, 3, 50]])
    again = schema.sample(42, np.arange(100))
    np.testing.assert_array_equal(again.continuous, full.continuous)
    other = schema.sample(43, np.arange(100))
    assert not np.array_equal(other.continuous, full.continuous)
    full.validate()
    assert full.continuous.dtype == np.float32 and full.discrete.dtype == np.int64


def test_uniform_prior_covers_ranges_and_options(schema):
    batch = schema.sample(0, np.arange(2000))
    jaw = batch.continuous[:, 0]
    assert jaw.min() >= -1 and jaw.max() <= 1 and abs(jaw.mean()) < 0.06
    counts = np.bincount(batch.discrete[:, 0], minlength=4) / 2000
    np.testing.assert_allclose(counts, 0.25, atol=0.04)


def test_weight_zero_never_samples_and_weights_rebalance_a_long_tail(schema):
    prior = Prior(discrete_weights={"hair": {"bald": 0.0, "mohawk": 9.0}})
    batch = schema.sample(1, np.arange(3000), prior)
    counts = np.bincount(batch.discrete[:, 0], minlength=4) / 3000
    assert counts[2] == 0  # weight 0: never
    np.testing.assert_allclose(counts, [1 / 11, 1 / 11, 0, 9 / 11], atol=0.03)
    # unlisted parameters stay uniform
    np.testing.assert_allclose(np.bincount(batch.discrete[:, 1]) / 3000, 0.5, atol=0.04)


def test_normal_prior_centres_on_defaults_and_stays_in_range(schema):
    prior = Prior(continuous="normal", normal_width=0.1)
    batch = schema.sample(2, np.arange(2000), prior)
    eye = batch.continuous[:, 1]
    assert eye.min() >= 0.5 and eye.max() <= 2.0
    assert abs(eye.mean() - 1.0) < 0.02 and 0.12 < eye.std() < 0.18  # sigma = 0.1 * 1.5
    wide = schema.sample(2, np.arange(500), Prior(continuous="normal", normal_width=5.0))
    assert wide.continuous[:, 0].min() == -1.0 and wide.continuous[:, 0].max() == 1.0  # clipped


def test_prior_dict_round_trip(schema):
    prior = Prior(continuous="normal", normal_width=0.3,
                  discrete_weights={"glasses": {"round": 0.5}})
    back = Prior.from_dict(json.loads(json.dumps(prior.to_dict())))
    assert back == prior
    np.testing.assert_array_equal(schema.sample(9, np.arange(30), back).continuous,
                                  schema.sample(9, np.arange(30), prior).continuous)


@pytest.mark.parametrize("prior, words", [
    (Prior(continuous="beta"), "continuous must be 'uniform' or 'normal', got 'beta'"),
    (Prior(discrete_weights={"jaw": {"x": 1}}), "'jaw' is not a discrete parameter of 'demo'"),
    (Prior(discrete_weights={"ears": {"x": 1}}), "'ears' is not a discrete parameter"),
    (Prior(discrete_weights={"hair": {"afro": 1}}), "unknown option 'afro'"),
    (Prior(discrete_weights={"hair": {"bald": -1}}), "weight for hair='bald' must be >= 0"),
    (Prior(discrete_weights={"hair": {"bald": float("nan")}}), "must be >= 0, got nan"),
    (Prior(discrete_weights={"hair": {"bald": float("inf")}}), "must be >= 0, got inf"),
    (Prior(discrete_weights={"glasses": {"none": 0, "round": 0}}),
     "every option of 'glasses' has weight 0"),
    (Prior(discrete_weights={"hair": {"bald": "2"}}), "must be >= 0, got '2'"),
    (Prior(continuous="normal", normal_width=-0.1), "normal_width must be a finite number >= 0"),
    (Prior(normal_width=float("nan")), "of each range), got nan"),
])
def test_bad_priors_are_refused_before_sampling(schema, prior, words):
    with pytest.raises((SchemaError, InvalidVectorError)) as e:
        schema.sample(0, [0, 1], prior)
    assert words in str(e.value)


def test_prior_from_dict_refuses_unknown_fields():
    with pytest.raises(SchemaError, match="unknown field\\(s\\) \\['weights'\\]"):
        Prior.from_dict({"weights": {}})


@pytest.mark.parametrize("kind", ["discrete_only", "continuous_only"])
def test_schemas_with_one_kind_of_parameter(kind):
    if kind == "discrete_only":  # like an asset-only engine (the paper's Alter)
        schema = EngineSchema("d", "1", (), (DiscreteParam("top", ("a", "b", "c")),))
    else:
        schema = EngineSchema("c", "1", (ContinuousParam("w", 0.0, 2.0, 1.0),), ())
    batch = schema.sample(0, np.arange(7))
    assert batch.continuous.shape == (7, schema.n_continuous)
    assert batch.discrete.shape == (7, schema.n_discrete)
    back = VectorBatch.from_onehot(schema, batch.onehot())
    np.testing.assert_allclose(back.continuous, batch.continuous, atol=1e-6)
    np.testing.assert_array_equal(back.discrete, batch.discrete)
    cols = VectorBatch.from_columns(schema, batch.to_columns())
    np.testing.assert_array_equal(cols.discrete, batch.discrete)
    assert len(batch.select([])) == 0 and len(VectorBatch.stack(list(batch))) == 7
    assert AvatarVector.from_json(schema, batch[3].to_json()) == batch[3]


def test_range_ends_survive_float32_storage():
    # 0.9 and 0.7 are not exact in float32; a vector at a range end must stay valid once stored.
    s = EngineSchema("f32", "1", (ContinuousParam("x", 0.7, 0.9, 0.8),), ())
    for v in (0.7, 0.9):
        assert s.vector({"x": v})["x"] == pytest.approx(v)
    b = VectorBatch.from_normalized(s, np.array([[0.0], [1.0]]), np.zeros((2, 0), np.int64))
    b.validate()


def test_discrete_only_and_continuous_only_batches():
    d_only = EngineSchema("d", "1", (), (DiscreteParam("k", ("a", "b", "c")),))
    assert d_only.sample(0, range(4)).discrete.shape == (4, 1)
    c_only = EngineSchema("c", "1", (ContinuousParam("x", 0, 1, 0),), ())
    assert c_only.sample(0, range(3)).continuous.shape == (3, 1)
