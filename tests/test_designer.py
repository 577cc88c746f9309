"""The designer ground truth: valid vectors for both engines, and attribute -> parameter
mappings a person would agree with."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from swiftavatar.engines import get_engine
from swiftavatar.engines.schema import InvalidVectorError, VectorBatch, row_errors
from swiftavatar.evaluation import designer as dz
from swiftavatar.evaluation import (NoDesignerError, available_designers, design, designer_for,
                                    nearest_colour, register_designer)
from swiftavatar.evaluation.designer_avataaars import HAIR_COLORS as AVA_HAIR
from swiftavatar.evaluation.designer_avataaars import SKIN_COLORS as AVA_SKIN
from swiftavatar.evaluation.designer_avataaars import CLOTHING_COLORS as AVA_CLOTH
from swiftavatar.faces import face_attributes
from swiftavatar.faces.attributes import SKIN_TONES

SEED = 4242  # a seed of its own; attributes only (nothing is rendered)


@pytest.fixture(scope="module")
def attrs():
    return face_attributes(SEED, range(200))


@pytest.fixture(scope="module")
def schemas():
    return {name: get_engine(name).schema for name in ("toon", "avataaars")}


@pytest.fixture(scope="module")
def designed(attrs, schemas):
    return {name: design(attrs, s) for name, s in schemas.items()}


def _rows(vb: VectorBatch) -> list[dict]:
    return [v.to_dict() for v in vb]


def _first(attrs, **want):
    for a in attrs:
        if all(getattr(a, k) == v for k, v in want.items()):
            return a
    raise AssertionError(f"no face with {want} among the test faces")


def _one(attr, schema, **changes):
    return design([dataclasses.replace(attr, **changes)], schema, keep_style=True)[0].to_dict()


def _lightness(rgb) -> float:
    return float(dz.srgb_to_lab(np.asarray(dz._rgb(rgb)))[0])


def test_designer_vectors_are_valid_for_both_engines(designed, schemas):
    assert set(available_designers()) >= {"toon", "avataaars"}
    for name, vb in designed.items():
        assert len(vb) == 200 and vb.schema.fingerprint == schemas[name].fingerprint
        assert row_errors(vb.schema, vb.continuous, vb.discrete) == [""] * 200
        # a faithful designer uses many assets, not one default
        hair = "hair_style" if name == "toon" else "top"
        assert len({r[hair] for r in _rows(vb)}) >= 8


def test_the_designer_is_deterministic(attrs, schemas, designed):
    again = design(attrs, schemas["toon"])
    assert np.array_equal(again.continuous, designed["toon"].continuous)
    assert np.array_equal(again.discrete, designed["toon"].discrete)


def test_glasses_facial_hair_and_headwear_carry_over(attrs, designed):
    toon, ava = _rows(designed["toon"]), _rows(designed["avataaars"])
    for a, t, v in zip(attrs, toon, ava):
        assert t["glasses"] == a.glasses
        assert (v["accessory"] == "none") == (a.glasses == "none")
        if a.glasses == "sunglasses":
            assert v["accessory"] == "sunglasses"
        assert t["facial_hair"] == a.facial_hair
        assert (v["facial_hair"] == "none") == (a.facial_hair == "none")
        assert t["headwear"] == a.headwear
        assert v["top"].startswith("hat_") == (a.headwear != "none")
        assert t["earrings"] == a.earrings


def test_hair_length_and_fringe_map_to_matching_styles(attrs, schemas):
    base = _first(attrs, headwear="none")
    long_toon = {"long_straight", "long_wavy", "bangs"}
    short_toon = {"bald", "buzz", "short", "side_part", "pixie"}
    for style in ("long_straight", "long_wavy"):
        for bangs in (False, True):
            assert _one(base, schemas["toon"], hair_style=style, bangs=bangs)["hair_style"] \
                in long_toon
            assert _one(base, schemas["avataaars"], hair_style=style, bangs=bangs)["top"] \
                in {"straight_1", "curvy"}
    for style in ("bald", "buzz", "short", "side_part"):
        assert _one(base, schemas["toon"], hair_style=style, bangs=False)["hair_style"] \
            in short_toon
    assert _one(base, schemas["toon"], hair_style="short", bangs=True)["hair_style"] == "pixie"
    assert _one(base, schemas["toon"], hair_style="long_straight", bangs=True)["hair_style"] \
        == "bangs"
    assert _one(base, schemas["avataaars"], hair_style="bob", bangs=True)["top"] == "mia_wallace"
    assert _one(base, schemas["avataaars"], hair_style="afro", bangs=False)["top"] == "fro"
    assert _one(base, schemas["toon"], hair_style="afro", bangs=False)["hair_style"] == "afro"


def test_darker_skin_gets_a_darker_skin_option(attrs, schemas):
    from swiftavatar.engines.toon_schema import SKIN_TONES as TOON_SKIN

    base = attrs[0]
    toon_l, ava_l = [], []
    for tone in SKIN_TONES:                    # the face model's tones, light to dark
        rgb = SKIN_TONES[tone]
        toon_l.append(_lightness(TOON_SKIN[_one(base, schemas["toon"], skin_rgb=rgb)
                                           ["skin_tone"]]))
        ava_l.append(_lightness(AVA_SKIN[_one(base, schemas["avataaars"], skin_rgb=rgb)
                                         ["skin_color"]]))
    for ls in (toon_l, ava_l):
        assert all(a >= b for a, b in zip(ls, ls[1:])), ls
        assert ls[0] - ls[-1] > 40             # fair and deep end far apart
    assert _one(base, schemas["avataaars"], skin_rgb=SKIN_TONES["fair"])["skin_color"] == "pale"


def test_hair_and_cloth_colours_pick_the_nearest_palette_entry(attrs, schemas):
    base = attrs[0]
    t = lambda **kw: _one(base, schemas["toon"], **kw)  # noqa: E731
    assert t(hair_rgb=(30, 26, 24))["hair_color"] == "black"
    assert t(hair_rgb=(222, 208, 180))["hair_color"] == "platinum"
    assert t(hair_rgb=(200, 60, 200))["hair_color"] not in ("pink", "purple", "blue")
    assert t(cloth_rgb=(160, 36, 40))["clothing_color"] == "red"
    assert t(eye_rgb=(80, 120, 160))["eye_color"] == "blue"
    v = _one(base, schemas["avataaars"], hair_rgb=(30, 26, 24))
    assert v["hair_color"] == v["facial_hair_color"] == "black"
    assert nearest_colour((250, 250, 250), {"a": "#000000", "b": (255, 255, 255)}) == "b"
    assert np.allclose(dz.srgb_to_lab([255, 255, 255]), [100, 0, 0], atol=0.05)


def test_shape_attributes_set_sliders_in_the_same_direction(attrs, schemas):
    s = schemas["toon"]
    base = attrs[0]
    fw = s.param("face_width")
    assert _one(base, s, face_width=0.0)["face_width"] == pytest.approx(fw.low)
    assert _one(base, s, face_width=1.0)["face_width"] == pytest.approx(fw.high)
    assert _one(base, s, face_width=0.5)["face_width"] == pytest.approx(fw.default)
    for name in ("eye_size", "jaw_width", "chin_length", "nose_size", "lip_thickness",
                 "brow_tilt", "brow_thickness", "eye_spacing"):
        lo, hi = _one(base, s, **{name: 0.1})[name], _one(base, s, **{name: 0.9})[name]
        assert lo < hi, name
    neutral, broad = _one(base, s, smile=0.1), _one(base, s, smile=0.95)
    assert neutral["mouth_curve"] < broad["mouth_curve"]
    assert neutral["mouth"] == "smile" and broad["mouth"] in ("grin", "laugh")
    assert _one(base, s, head_roll_deg=30.0)["head_tilt"] == pytest.approx(8.0)


def test_avataaars_palettes_match_the_installed_art():
    pa = pytest.importorskip("python_avatars")
    for table, enum in ((AVA_SKIN, pa.SkinColor), (AVA_HAIR, pa.HairColor),
                        (AVA_CLOTH, pa.ClothingColor)):
        assert table == {m.name.lower(): m.value.upper() for m in enum}


def test_registry_errors_and_custom_designers(monkeypatch, squares_engine, attrs):
    monkeypatch.setattr(dz, "_REGISTERED", {})
    with pytest.raises(NoDesignerError, match=r"register_designer\('squares'"):
        designer_for("squares")
    schema = squares_engine.schema

    def squares_designer(records, sch):
        n = len(records)
        disc = np.array([[0, 0 if a.skin_tone in ("fair", "light") else 1] for a in records])
        return VectorBatch(sch, np.full((n, 3), [0.5, 0.5, 0.0]), disc)

    register_designer("squares", squares_designer)
    with pytest.raises(ValueError, match="already registered"):
        register_designer("squares", squares_designer)
    vb = design(attrs[:10], schema)
    assert len(vb) == 10 and vb.discrete[:, 1].tolist() == [
        0 if a.skin_tone in ("fair", "light") else 1 for a in attrs[:10]]

    register_designer("squares", lambda r, s: squares_designer(r[:1], s), replace=True)
    with pytest.raises(InvalidVectorError, match="10 rows"):
        design(attrs[:10], schema)
    register_designer("squares", lambda r, s: VectorBatch(
        s, np.full((len(r), 3), 5.0), np.zeros((len(r), 2))), replace=True)
    with pytest.raises(InvalidVectorError, match="hue"):
        design(attrs[:3], schema)


def test_bad_input_gets_clear_errors(attrs, schemas):
    with pytest.raises(ValueError, match="avataaars"):
        designer_for("toon")(attrs[:2], schemas["avataaars"])
    with pytest.raises(ValueError, match="hair_style/bangs.*mullet"):
        design([dataclasses.replace(attrs[0], hair_style="mullet", headwear="none")],
               schemas["toon"])
    with pytest.raises(ValueError, match="at least one"):
        design([], schemas["toon"])
    with pytest.raises(TypeError, match="FaceAttributes"):
        design([{"hair_style": "bob"}], schemas["toon"])
