"""The opt-in randomised face domain: today's faces unchanged, every randomised factor inside
its declared range and covering it, determinism, batch independence, consistent masks under
occlusion, records that round-trip."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from swiftavatar.faces import FaceAttributes, FaceDomainConfig, face_attributes, face_images
from swiftavatar.faces.attributes import EYE_COLORS, HAIR_COLORS, SKIN_TONES
from swiftavatar.faces.occlusion import EYE_CLEAR_Y, MIDLINE_GAP, occluder_sdf
from swiftavatar.faces.procedural import render_faces
from swiftavatar.faces.randomise import MONK_APPEARANCE, RandomisedFaceConfig, randomise
from swiftavatar.semantics import BACKGROUND, EYES, HAIR

WILD = FaceDomainConfig.randomised()


def _sha(images: np.ndarray, masks: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + masks.tobytes()).hexdigest()


def test_default_faces_are_unchanged():
    # hashes of the faces before the randomised domain existed
    assert _sha(*face_images(0, range(4), 64)) == \
        "0d23d2b76e609e068416bfd2c5dadd500b764628a500cf0fab7d329c53b80b5f"
    assert _sha(*face_images(3, range(4), 128)) == \
        "e4d631c4a3edb55776f7b8b0d3dd51f2a634455551f35110d4ab1a4244c928cf"
    rec = face_attributes(0, [0])[0].to_dict()
    assert "monk_tone" not in rec and "occluder" not in rec
    assert set(dataclasses.asdict(FaceDomainConfig())) == \
        {f.name for f in dataclasses.fields(FaceDomainConfig)}


def test_preset_is_opt_in_and_validated():
    assert isinstance(WILD, RandomisedFaceConfig) and not isinstance(FaceDomainConfig(),
                                                                     RandomisedFaceConfig)
    assert WILD.with_size(96).size == 96 and isinstance(WILD.with_size(96), RandomisedFaceConfig)
    assert FaceDomainConfig.randomised(p_occluder=1.0).p_occluder == 1.0
    for bad in ({"n_lights": (0, 2)}, {"gamma": (0.1, 1.0)}, {"cast": 0.7},
                {"p_occluder": 1.5}, {"light_hardness": (0.5, 1.2)}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FaceDomainConfig.randomised(**bad)


@pytest.fixture(scope="module")
def records() -> list[FaceAttributes]:
    return face_attributes(5, range(256), WILD)


def test_every_randomised_factor_stays_in_range_and_covers_it(records):
    def span(name):
        v = np.array([getattr(r, name) for r in records], np.float64)
        return v.min(), v.max()

    for name, (lo, hi) in [("light_azimuth_deg", WILD.light_azimuth_deg),
                           ("head_yaw_deg", WILD.yaw_deg), ("head_roll_deg", WILD.roll_deg),
                           ("light_elevation_deg", WILD.light_elevation_deg),
                           ("light_kelvin", WILD.light_kelvin), ("ambient", WILD.ambient),
                           ("exposure", WILD.exposure), ("noise_std", WILD.noise_std),
                           ("blur_sigma", WILD.blur_sigma), ("jpeg_quality", WILD.jpeg_quality),
                           ("light_hardness", WILD.light_hardness),
                           ("white_balance", WILD.white_balance_range), ("gamma", WILD.gamma)]:
        a, b = span(name)
        assert lo <= a and b <= hi, (name, a, b)
        assert a < lo + 0.1 * (hi - lo) and b > hi - 0.1 * (hi - lo), (name, a, b)  # covered
    casts = np.array([r.cast_rgb for r in records])
    assert casts.min() >= 1 - WILD.cast and casts.max() <= 1 + WILD.cast
    assert {r.monk_tone for r in records} == set(range(1, len(MONK_APPEARANCE) + 1))
    assert {r.skin_tone for r in records} == set(SKIN_TONES)
    assert {r.hair_color for r in records} == set(HAIR_COLORS)   # grey, platinum, ginger too
    assert {r.eye_color for r in records} == set(EYE_COLORS)
    assert {r.n_lights for r in records} == {1, 2, 3}
    assert {r.occluder for r in records} == {"none", "hand", "microphone", "strand"}
    assert {r.backdrop for r in records} == {"scene", "wild"}
    occluded = np.mean([r.occluder != "none" for r in records])
    assert abs(occluded - WILD.p_occluder) < 0.1
    # skin categories run light to dark: the recorded colour's luminance falls with the tone
    lum = {k: np.mean([np.dot(r.skin_rgb, (0.2126, 0.7152, 0.0722)) for r in records
                       if r.monk_tone == k]) for k in range(1, 11)}
    assert all(lum[k] > lum[k + 1] for k in range(1, 10)), lum


def test_the_shifted_evaluation_conditions_lie_inside_the_randomised_domain():
    from swiftavatar.evaluation.evalset import SHIFTED_CONDITIONS as S

    for name in ("yaw_deg", "roll_deg", "light_azimuth_deg", "light_elevation_deg",
                 "light_kelvin", "light_intensity", "ambient", "exposure", "blur_sigma",
                 "noise_std", "jpeg_quality"):
        lo, hi = getattr(WILD, name)
        assert lo <= getattr(S, name)[0] and getattr(S, name)[1] <= hi, name
    assert WILD.white_balance_range[0] <= S.white_balance <= WILD.white_balance_range[1]


def test_records_round_trip_and_replay_without_rendering(records):
    r = records[0]
    assert FaceAttributes.from_dict(r.to_dict()) == r
    b = render_faces(5, [0, 1, 2], 48, WILD)
    assert b.attributes == records[:3]
    assert face_attributes(5, (i for i in range(3)), WILD) == records[:3]   # any iterable


def test_deterministic_and_independent_of_batch():
    a_img, a_msk = face_images(7, [3, 4, 5, 6], 48, WILD)
    b_img, b_msk = face_images(7, [6, 4], 48, WILD)
    assert np.array_equal(a_img[3], b_img[0]) and np.array_equal(a_img[1], b_img[1])
    assert np.array_equal(a_msk[3], b_msk[0]) and np.array_equal(a_msk[1], b_msk[1])
    c_img, _ = face_images(7, [3, 4, 5, 6], 48, WILD)
    assert np.array_equal(a_img, c_img)
    d_img, _ = face_images(7, [3, 4, 5, 6], 48)          # the default domain differs
    assert not np.array_equal(a_img, d_img)


def test_masks_stay_consistent_under_occlusion():
    """The same faces with and without their occluder: every pixel the occluder takes is
    labelled background (hand, microphone) or hair (strand), never a face part; at least one
    eye stays visible; the occluder covers a limited area; the rest of the mask is unchanged."""
    ids = range(24)
    on = render_faces(11, ids, 64, FaceDomainConfig.randomised(p_occluder=1.0))
    off = render_faces(11, ids, 64, FaceDomainConfig.randomised(p_occluder=0.0))
    kinds = set()
    for k in range(len(on)):
        a_on, a_off = on.attributes[k], off.attributes[k]
        assert a_off.occluder == "none" and a_on.occluder != "none"
        assert dataclasses.replace(a_on, occluder="none") == a_off   # nothing else changed
        kinds.add(a_on.occluder)
        changed = on.masks[k] != off.masks[k]
        allowed = {HAIR} if a_on.occluder == "strand" else {BACKGROUND}
        assert set(np.unique(on.masks[k][changed])) <= allowed, a_on.occluder
        assert changed.mean() < 0.12, (a_on.occluder, changed.mean())
        eyes = off.masks[k] == EYES
        if eyes.sum() >= 4:
            cols = np.nonzero(eyes)[1]
            mid = (cols.min() + cols.max()) / 2
            left = eyes & (np.arange(64)[None, :] < mid)
            right = eyes & (np.arange(64)[None, :] >= mid)
            kept = [(on.masks[k][side] == EYES).mean() for side in (left, right) if side.any()]
            assert max(kept) > 0.5, (a_on.occluder, kept)
    assert kinds == {"hand", "microphone", "strand"}


def test_occluders_keep_clear_of_both_eyes_by_construction():
    """Hands and microphones stay below the eyes, strands on one side of the midline."""
    y, x = np.mgrid[-1:1:200j, -1:1:200j]
    for i in range(60):
        att, plan = randomise(face_attributes(2, [i])[0], 2, i,
                              FaceDomainConfig.randomised(p_occluder=1.0))
        o = plan.occluder
        inside = occluder_sdf(o, x.astype(np.float32), y.astype(np.float32)) < 0
        if o.kind == "strand":
            assert not (inside & (x * o.side < MIDLINE_GAP)).any()
        else:
            assert not (inside & (y < EYE_CLEAR_Y)).any()
        assert inside.any()


def test_camera_degradations_leave_masks_alone():
    crisp = FaceDomainConfig.randomised(blur_sigma=(0.0, 0.0), noise_std=(0.0, 0.0),
                                        jpeg_quality=(100, 100))
    harsh = FaceDomainConfig.randomised(blur_sigma=(0.012, 0.012), noise_std=(0.05, 0.05),
                                        jpeg_quality=(20, 20))
    a_img, a_msk = face_images(1, range(4), 48, crisp)
    b_img, b_msk = face_images(1, range(4), 48, harsh)
    assert np.array_equal(a_msk, b_msk) and not np.array_equal(a_img, b_img)
