"""The built-in `toon` engine: schema, rendering, determinism and image/mask agreement."""
from __future__ import annotations

import numpy as np
import pytest

from swiftavatar import semantics as sem
from swiftavatar.engines import VectorBatch, get_engine
from swiftavatar.engines.toon import ToonEngine
from swiftavatar.engines.toon_schema import (BACKGROUNDS, GLASSES, HAIR_COLORS, HAIR_STYLES,
                                             SEE_THROUGH_GLASSES, SKIN_TONES)


@pytest.fixture(scope="module")
def engine() -> ToonEngine:
    return ToonEngine()


@pytest.fixture(scope="module")
def sampled(engine):
    """24 random avatars at 256 px (rendered once for several tests)."""
    batch = engine.schema.sample(seed=7, ids=range(24))
    return batch, engine.render(batch, 256)


def _batch(engine, *overrides: dict) -> VectorBatch:
    """Default vectors with the given parameters changed, one row per dict."""
    return VectorBatch.stack([engine.schema.vector(o, fill_defaults=True) for o in overrides])


def _erode(m: np.ndarray) -> np.ndarray:
    """(H, W) bool -> pixels whose 4 neighbours are also set (drops the anti-aliased rim)."""
    out = m.copy()
    out[1:] &= m[:-1]
    out[:-1] &= m[1:]
    out[:, 1:] &= m[:, :-1]
    out[:, :-1] &= m[:, 1:]
    return out


def _dilate(m: np.ndarray, r: int) -> np.ndarray:
    out = m.copy()
    for _ in range(r):
        o = out.copy()
        o[1:] |= out[:-1]
        o[:-1] |= out[1:]
        o[:, 1:] |= out[:, :-1]
        o[:, :-1] |= out[:, 1:]
        out = o
    return out


def test_schema_sizes(engine):
    s = engine.schema
    assert (s.engine, s.version, s.supports_masks) == ("toon", "1.0", True)
    assert s.n_continuous >= 8 and s.n_discrete >= 8
    assert len(s.param("hair_style").options) >= 12
    glasses = s.param("glasses").options
    assert len(glasses) >= 4 and glasses[0] == "none"
    assert set(SEE_THROUGH_GLASSES) <= set(glasses) and "sunglasses" in glasses
    for p in s.discrete:
        assert all(o == o.lower() and " " not in o for o in p.options), p.name
    assert get_engine("toon").schema.fingerprint == s.fingerprint
    assert ToonEngine().schema is s  # built once


def test_range_ends_are_valid_vectors(engine):
    """Every slider end survives the float32 storage of vectors and validates."""
    s = engine.schema
    for p in s.continuous:
        for v in (p.low, p.high):
            assert s.vector({p.name: v}, fill_defaults=True)[p.name] == pytest.approx(v, abs=1e-6)
    lo = VectorBatch.from_normalized(s, np.zeros((1, s.n_continuous)), np.zeros((1, s.n_discrete)))
    hi = VectorBatch.from_normalized(s, np.ones((1, s.n_continuous)), np.zeros((1, s.n_discrete)))
    lo.validate()
    hi.validate()


@pytest.mark.parametrize("size", [64, 200])
def test_render_shapes(engine, size):
    out = engine.render(engine.schema.sample(seed=1, ids=range(3)), size)
    assert out.images.shape == (3, size, size, 3) and out.images.dtype == np.uint8
    assert out.masks.shape == (3, size, size) and out.masks.dtype == np.uint8
    assert out.masks.max() < sem.NUM_CLASSES
    for m in out.masks:  # a bust: face, hair or hat, neck and clothes, on a background
        present = set(np.unique(m).tolist())
        assert {sem.BACKGROUND, sem.SKIN, sem.NECK, sem.CLOTH} <= present


def test_deterministic(engine):
    batch = engine.schema.sample(seed=3, ids=range(4))
    a, b = engine.render(batch, 128), engine.render(batch, 128)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.masks.tobytes() == b.masks.tobytes()
    # a row renders the same alone as inside a batch
    assert np.array_equal(engine.render(batch.select([2]), 128).images[0], a.images[2])


def test_different_vectors_differ(engine, sampled):
    _, out = sampled
    flat = out.images.reshape(len(out), -1)
    assert len({row.tobytes() for row in flat}) == len(out)


def test_face_is_centred_like_an_aligned_crop(engine, sampled):
    _, out = sampled
    for m in out.masks:
        ys, xs = np.nonzero(m == sem.EYES)
        if len(ys):  # hidden behind sunglasses otherwise
            assert 0.38 < ys.mean() / 256 < 0.5 and abs(xs.mean() / 256 - 0.5) < 0.06
        ys, xs = np.nonzero(m == sem.SKIN)
        assert abs(xs.mean() / 256 - 0.5) < 0.06


@pytest.mark.parametrize("cls,palette,param", [
    (sem.HAIR, HAIR_COLORS, "hair_color"),
    (sem.SKIN, SKIN_TONES, "skin_tone"),
    (sem.BACKGROUND, BACKGROUNDS, "background"),
])
def test_masks_agree_with_image_colours(sampled, cls, palette, param):
    """Inside a class's mask (its anti-aliased rim dropped) the image shows that class's chosen
    colour, or its shade tone (cel shading, the back layer of long hair)."""
    batch, out = sampled
    good = total = 0
    for i in range(len(batch)):
        m = _erode(out.masks[i] == cls)
        if m.sum() < 200:
            continue
        base = np.array(palette[batch[i][param]], np.float64)
        px = out.images[i][m].astype(np.float64)
        dist = np.minimum(np.linalg.norm(px - base, axis=1),
                          np.linalg.norm(px - 0.86 * base, axis=1))
        ok = dist < 40.0
        assert ok.mean() > 0.7, (i, cls, ok.mean())
        if cls == sem.BACKGROUND:  # flat background
            assert (px == base).all(axis=1).mean() > 0.99
        good += int(ok.sum())
        total += len(ok)
    assert total > 0 and good / total >= 0.9, good / max(total, 1)


def test_every_hair_style_draws_hair_but_bald(engine):
    out = engine.render(_batch(engine, *({"hair_style": h} for h in HAIR_STYLES)), 128)
    for style, m in zip(HAIR_STYLES, out.masks):
        n = int((m == sem.HAIR).sum())
        assert (n == 0) if style == "bald" else (n > 150), (style, n)
    hair = [(m == sem.HAIR) for m in out.masks]
    assert len({h.tobytes() for h in hair}) == len(HAIR_STYLES)  # all distinct shapes


def test_glasses_classes(engine):
    out = engine.render(_batch(engine, *({"glasses": g} for g in GLASSES)), 192)
    counts = {g: int((m == sem.EYEGLASSES).sum()) for g, m in zip(GLASSES, out.masks)}
    assert counts["none"] == 0
    assert all(counts[g] > 300 for g in GLASSES if g != "none"), counts


def test_eyes_show_through_clear_lenses(engine):
    """Clear lenses keep the eyes visible (image) and labelled (mask); sunglasses hide them."""
    out = engine.render(_batch(engine, {"glasses": "none"}, {"glasses": "round"},
                               {"glasses": "sunglasses"}), 256)
    eyes = _erode(out.masks[0] == sem.EYES)
    assert eyes.sum() > 200
    ys, xs = np.nonzero(out.masks[1] == sem.EYEGLASSES)
    frame_box = np.zeros_like(eyes)
    frame_box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    through = out.masks[1] == sem.EYES
    # the eyes keep their class inside the glasses (CelebAMask-HQ labels them over the lens)
    assert (through & frame_box).sum() > 0.8 * (out.masks[0] == sem.EYES).sum()
    a, b, c = (o[eyes].astype(np.float64) for o in out.images)
    assert np.abs(b - a).mean() < 25.0  # the same eyes, lightly tinted
    assert np.abs(c - a).mean() > 60.0  # dark lenses
    assert (out.masks[2] == sem.EYES).sum() < 0.1 * eyes.sum()
    pupils = (out.images[1].astype(int).sum(axis=2) < 250) & through
    assert pupils.sum() > 20


def test_eye_size_changes_mostly_the_eyes(engine):
    out = engine.render(_batch(engine, {"eye_size": 0.8}, {"eye_size": 1.25}), 256)
    changed = (out.images[0] != out.images[1]).any(axis=2)
    eyes = _dilate((out.masks[0] == sem.EYES) | (out.masks[1] == sem.EYES), 2)
    brows = _dilate((out.masks[0] == sem.BROWS) | (out.masks[1] == sem.BROWS), 2)
    assert changed.sum() > 300
    assert (changed & eyes).sum() > 0.5 * changed.sum()
    assert (changed & (eyes | brows)).sum() > 0.95 * changed.sum()


def test_every_slider_changes_the_image(engine):
    s = engine.schema
    rows = [o for p in s.continuous for o in ({p.name: p.low}, {p.name: p.high})]
    out = engine.render(_batch(engine, *rows), 96)
    for k, p in enumerate(s.continuous):
        assert not np.array_equal(out.images[2 * k], out.images[2 * k + 1]), p.name


def test_everyday_prior_makes_plain_avatars_common(engine):
    from swiftavatar.engines.toon_schema import EVERYDAY_PRIOR

    s = engine.schema
    EVERYDAY_PRIOR.check(s)
    j = [p.name for p in s.discrete].index("headwear")
    plain = (s.sample(seed=0, ids=range(400), prior=EVERYDAY_PRIOR).discrete[:, j] == 0).mean()
    uniform = (s.sample(seed=0, ids=range(400)).discrete[:, j] == 0).mean()
    assert 0.4 < plain < 0.6 and uniform < 0.3
