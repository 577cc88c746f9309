"""Evaluation against designer vectors: the held-out set, LPIPS/accuracy/MAE, the report."""
from __future__ import annotations

import json

import numpy as np
import pytest

from swiftavatar.engines import get_engine
from swiftavatar.engines.schema import InvalidVectorError, VectorBatch
from swiftavatar.evaluation import (EVAL_SEED, EvalSet, Evaluator, continuous_mae,
                                    discrete_accuracy, evaluate_vectors, figure6_sheet,
                                    with_params_from, write_report)
from swiftavatar.evaluation.report import HEADER_H
from swiftavatar.metrics import BACKBONE_KINDS

N, SIZE = 6, 64  # faces and render side: small, to stay fast


@pytest.fixture(scope="module")
def lpips_metric(tmp_path_factory):
    """The project's LPIPS with build_lpips' default backbone choice (converted weights are
    cached in a temp dir, not the user's cache)."""
    from swiftavatar.metrics import build_lpips

    return build_lpips(cache_dir=tmp_path_factory.mktemp("swiftavatar-cache"))


@pytest.fixture(scope="module")
def toon_data():
    return EvalSet(count=N, size=SIZE).build("toon")


def _set(vb: VectorBatch, name: str, label: str, rows) -> VectorBatch:
    out = VectorBatch(vb.schema, vb.continuous.copy(), vb.discrete.copy())
    j = [p.name for p in vb.schema.discrete].index(name)
    out.discrete[list(rows), j] = vb.schema.param(name).index(label)
    return out


def test_eval_set_is_held_out_and_reproducible(toon_data):
    es = EvalSet()
    assert (es.seed, es.count) == (EVAL_SEED, 116) and es.seed != 0
    with pytest.raises(ValueError, match="also a training seed"):
        es.check_disjoint([0, EVAL_SEED])
    es.check_disjoint([0, 1])
    small = toon_data.spec
    assert small.attributes() == toon_data.faces.attributes
    assert toon_data.faces.images.shape == (N, SIZE, SIZE, 3)
    again = small.designer_vectors(get_engine("toon"))
    assert np.array_equal(again.discrete, toon_data.designer.discrete)
    assert json.loads(json.dumps(small.to_dict()))["seed"] == EVAL_SEED
    reused = small.build("avataaars", faces=toon_data.faces)           # no second render
    assert reused.faces is toon_data.faces and reused.designer.schema.engine == "avataaars"
    with pytest.raises(ValueError, match="this EvalSet is seed"):
        EvalSet(count=N, size=SIZE, seed=5).build("toon", faces=toon_data.faces)
    for bad in (dict(count=0), dict(seed=-1), dict(size=8), dict(first_id=-2)):
        with pytest.raises(ValueError):
            EvalSet(**bad)
    with pytest.raises(TypeError, match="count"):
        EvalSet(count=2.5)


def test_identical_vectors_score_perfectly(toon_data, lpips_metric):
    eng = get_engine("toon")
    r = evaluate_vectors(toon_data.designer, toon_data.designer, eng, method="same",
                         size=SIZE, lpips=lpips_metric)
    assert r.lpips_per_face == [0.0] * N and r.lpips_mean == 0.0
    assert r.discrete_accuracy_mean == 1.0 and set(r.discrete_accuracy.values()) == {1.0}
    assert r.continuous_mae_mean == 0.0
    assert r.lpips_info["backbone"] in BACKBONE_KINDS
    assert r.predicted_images.shape == (N, SIZE, SIZE, 3)
    d = r.to_dict()
    assert "predicted_images" not in d and d["lpips_backbone"] == r.lpips_info["backbone"]
    assert json.loads(json.dumps(d, allow_nan=False))["lpips_info"]["net"] == "vgg"


def test_perturbed_vectors_score_worse(toon_data, lpips_metric):
    eng = get_engine("toon")
    ref = toon_data.designer
    ev = Evaluator(eng, ref, size=SIZE, lpips=lpips_metric)
    # a different hair style on every face
    swapped = _set(ref, "hair_style", "mohawk", range(N))
    one = ev.evaluate(swapped, "hair")
    assert min(one.lpips_per_face) > 0.0
    assert one.discrete_accuracy["hair_style"] == 0.0
    # the mean is over the face heads (style heads are never predicted)
    assert one.discrete_accuracy_mean == pytest.approx(1 - 1 / len(ref.schema.face_discrete))
    # a few assets changed on half the faces: half the accuracy on those heads
    half = _set(_set(ref, "glasses", "sunglasses", [0, 1, 2]), "skin_tone", "porcelain",
                [0, 1, 2])
    acc = discrete_accuracy(half, ref)
    assert acc["glasses"] == pytest.approx(1 - sum(
        ref[i]["glasses"] != "sunglasses" for i in range(3)) / N)
    # random vectors: far from the designer on every measure
    rnd = ev.evaluate(ref.schema.sample(7, range(N)), "random")
    assert rnd.lpips_mean > one.lpips_mean > 0.0
    assert rnd.discrete_accuracy_mean < 0.6 and rnd.continuous_mae_mean > 0.1


def test_continuous_mae_is_in_normalised_units(toon_data):
    ref = toon_data.designer
    flipped = VectorBatch.from_normalized(ref.schema, 1.0 - ref.normalized_continuous(),
                                          ref.discrete)
    mae = continuous_mae(flipped, ref)
    want = np.abs(1.0 - 2.0 * ref.normalized_continuous()).mean(0)       # (n_c,)
    assert np.allclose([mae[p.name] for p in ref.schema.continuous], want, atol=1e-5)


def test_copied_parameters_leave_lpips_and_the_means(toon_data, lpips_metric):
    eng = get_engine("toon")
    ref = toon_data.designer
    rnd = ref.schema.sample(3, range(N))
    everything = ref.schema.param_names
    r = evaluate_vectors(rnd, ref, eng, size=SIZE, lpips=lpips_metric,
                         copy_from_designer=everything, keep_images=False)
    assert r.lpips_mean == 0.0 and r.predicted_images is None
    assert r.discrete_accuracy_mean is None and r.continuous_mae_mean is None
    assert r.discrete_accuracy == discrete_accuracy(rnd, ref)          # still reported
    bg = with_params_from(rnd, ref, ["background"])
    assert bg[0]["background"] == ref[0]["background"]
    with pytest.raises(InvalidVectorError, match="unknown parameter"):
        with_params_from(rnd, ref, ["no_such_param"])


def test_mismatched_inputs_are_refused(toon_data, lpips_metric):
    toon, ava = get_engine("toon"), get_engine("avataaars")
    ava_vecs = ava.schema.sample(0, range(N))
    with pytest.raises(InvalidVectorError, match="schema"):
        discrete_accuracy(ava_vecs, toon_data.designer)
    with pytest.raises(ValueError, match="same order"):
        discrete_accuracy(toon_data.designer.select([0, 1]), toon_data.designer)
    with pytest.raises(InvalidVectorError, match="designer vectors"):
        Evaluator(toon, ava_vecs, size=SIZE, lpips=lpips_metric)


def test_avataaars_evaluation_has_no_continuous_part(lpips_metric):
    data = EvalSet(count=3, size=SIZE).build("avataaars")
    eng = get_engine("avataaars")
    pred = _set(data.designer, "top", "mohawk", [0])
    r = evaluate_vectors(pred, data.designer, eng, size=SIZE, lpips=lpips_metric)
    assert r.continuous_mae == {} and r.continuous_mae_mean is None
    assert r.lpips_per_face[0] > 0.0 and r.lpips_per_face[1:] == [0.0, 0.0]
    assert r.discrete_accuracy["top"] == pytest.approx(2 / 3)


@pytest.mark.slow
def test_report_writes_json_and_html_with_the_table(tmp_path, toon_data, lpips_metric):
    eng = get_engine("toon")
    ref = toon_data.designer
    ev = Evaluator(eng, ref, size=SIZE, lpips=lpips_metric)
    base = ev.evaluate(ref.schema.sample(11, range(N)), "Baseline")
    da = ev.evaluate(_set(ref, "hair_style", "mohawk", [0, 1]), "+ domain adaptation")
    ref_images = ev.designer_images                                     # (N, SIZE, SIZE, 3)
    sheet = figure6_sheet(toon_data.faces.images, {"Baseline": base.predicted_images,
                                                   "+ DA": da.predicted_images},
                          ref_images, tile=48, n=4)
    paths = write_report(tmp_path / "rep", [base, da], eval_set=toon_data.spec.to_dict(),
                         figures={"Figure 6": sheet}, notes=["a <note>"])
    payload = json.loads(paths.json.read_text())
    assert [r["method"] for r in payload["table"]] == ["Baseline", "+ domain adaptation"]
    assert payload["table"][0]["lpips"] == pytest.approx(base.lpips_mean)
    assert payload["table"][1]["discrete_accuracy"] == pytest.approx(da.discrete_accuracy_mean)
    assert payload["lpips"]["backbone"] == base.lpips_backbone
    page = paths.html.read_text()
    for text in ("Baseline", "+ domain adaptation", f"{base.lpips_mean:.4f}",
                 f"{da.discrete_accuracy_mean:.4f}", f"{da.continuous_mae_mean:.4f}",
                 base.lpips_backbone, "data:image/png;base64,", "a &lt;note&gt;",
                 "skin tone &uarr;", "headwear &uarr;", f"&plusmn; {base.lpips_sem:.3f}"):
        assert text in page, text
    assert payload["table"][0]["attribute_accuracy"] == base.attribute_accuracy
    assert paths.figures["Figure 6"].is_file()
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [
        "figure_1.png", "report.html", "results.json"]                  # no temp files left
    assert ref_images.shape == (N, SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="at least one"):
        write_report(tmp_path / "empty", [])


def test_figure6_sheet_layout(toon_data):
    faces = toon_data.faces.images                                      # (N, 64, 64, 3)
    big = np.zeros((N, 128, 128, 3), np.uint8)
    sheet = figure6_sheet(faces, {"a": big, "b": big}, big, tile=96, n=3, pad=2)
    assert sheet.shape == (HEADER_H + 3 * 98 + 2, 4 * 98 + 2, 3) and sheet.dtype == np.uint8
    assert sheet[HEADER_H + 2:HEADER_H + 98, 2 + 98:2 + 98 + 96].max() == 0   # a method tile
    assert sheet[HEADER_H + 2:HEADER_H + 98, 2:98].std() > 10                  # a face tile
    same = figure6_sheet(faces, {}, faces)
    assert same.shape == (HEADER_H + N * 130 + 2, 2 * 130 + 2, 3)
    with pytest.raises(ValueError, match="'b' has 2 images"):
        figure6_sheet(faces, {"b": big[:2]}, big, n=3)


def test_noticed_attributes_read_options_and_presence(toon_data):
    from swiftavatar.evaluation import ATTRIBUTES, attribute_accuracy

    ref = toon_data.designer
    assert attribute_accuracy(ref, ref) == {a: 1.0 for a in ATTRIBUTES}
    no_glasses = [i for i in range(N) if ref[i]["glasses"] == "none"]
    other = _set(ref, "glasses", "sunglasses", no_glasses)               # glasses where none
    acc = attribute_accuracy(other, ref)
    assert acc["glasses"] == pytest.approx(1 - len(no_glasses) / N)
    with_glasses = [i for i in range(N) if ref[i]["glasses"] != "none"]
    swapped = _set(_set(ref, "glasses", "round", with_glasses), "glasses", "none", [])
    assert attribute_accuracy(swapped, ref)["glasses"] == 1.0              # presence only
    assert attribute_accuracy(_set(ref, "skin_tone", "porcelain", range(N)), ref)[
        "skin tone"] == pytest.approx(np.mean([ref[i]["skin_tone"] == "porcelain"
                                               for i in range(N)]))
    ava = get_engine("avataaars").schema
    hats = ava.sample(0, range(40))
    top = [p.name for p in ava.discrete].index("top")
    has_hat = np.array([ava.discrete[top].options[k].startswith("hat_")
                        for k in hats.discrete[:, top]])
    bare = VectorBatch(ava, hats.continuous, hats.discrete.copy())
    bare.discrete[:, top] = ava.param("top").index("short_flat")
    assert attribute_accuracy(bare, hats)["headwear"] == pytest.approx(1 - has_hat.mean())


def test_reference_rows_take_no_photo_and_keep_style_at_defaults(toon_data):
    from swiftavatar.evaluation import CONSTANT, RANDOM, reference_vectors

    eng = get_engine("toon")
    ref = toon_data.designer
    refs = reference_vectors(eng, ref)
    assert set(refs) == {RANDOM, CONSTANT}
    const = refs[CONSTANT]
    assert len(const) == N and (const.discrete == const.discrete[0]).all()
    for j, p in enumerate(ref.schema.discrete):
        if p.role == "face":
            assert const.discrete[0, j] == np.bincount(ref.discrete[:, j]).argmax()
        else:
            assert const.discrete[0, j] == p.default
    np.testing.assert_allclose(const.continuous[0], np.median(ref.continuous, 0), rtol=1e-6)
    rnd = refs[RANDOM]
    rnd.validate()
    assert len(rnd) == N and len({tuple(r) for r in rnd.discrete}) == N
    again = reference_vectors(eng, ref)[RANDOM]
    np.testing.assert_array_equal(again.discrete, rnd.discrete)        # a fixed draw


def test_shifted_conditions_keep_the_people_and_change_the_photos():
    base = EvalSet(count=3, size=64)
    a, b = base.faces(), base.shifted().faces()
    assert [x.skin_tone for x in a.attributes] == [x.skin_tone for x in b.attributes]
    assert [x.hair_style for x in a.attributes] == [x.hair_style for x in b.attributes]
    assert all(x.noise_std >= 0.025 for x in b.attributes)              # beyond training
    assert all(x.noise_std <= 0.025 for x in a.attributes)
    assert not np.array_equal(a.images, b.images)
