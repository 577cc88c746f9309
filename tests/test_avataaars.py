"""The `avataaars` engine: schema, every option rendering, determinism, sizes and crop."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from PIL import Image

from swiftavatar.engines.avataaars import AvataaarsEngine
from swiftavatar.engines.registry import get_engine
from swiftavatar.engines.schema import InvalidVectorError, VectorBatch

EXPECTED_OPTIONS = {  # python-avatars 1.4.1 (clothing_graphic without custom_text)
    "top": 61, "eyebrows": 14, "eyes": 12, "nose": 3, "mouth": 13, "facial_hair": 8,
    "accessory": 10, "clothing": 16, "clothing_graphic": 12, "skin_color": 7, "hair_color": 10,
    "facial_hair_color": 10, "clothing_color": 14, "background_color": 14,
}


@pytest.fixture(scope="module")
def engine():
    with AvataaarsEngine() as e:
        yield e


def _batch(schema, discrete: np.ndarray) -> VectorBatch:
    return VectorBatch(schema, np.zeros((len(discrete), 0), np.float32), discrete)


def _showcase(schema) -> np.ndarray:
    """Default vector with a beard and a graphic shirt, so every parameter shows."""
    v = schema.vector({"facial_hair": "beard_medium", "clothing": "graphic_shirt",
                       "clothing_graphic": "skull"}, fill_defaults=True)
    return v.discrete


def test_schema_layout(engine):
    s = engine.schema
    assert (s.engine, s.version, s.supports_masks) == ("avataaars", "python-avatars-1.4.1", False)
    assert s.n_continuous == 0
    assert {p.name: len(p.options) for p in s.discrete} == EXPECTED_OPTIONS
    for p in s.discrete:
        assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", o) for o in p.options), p.name
    top = s.param("top").options
    assert "hat" in top and "hat_hat" in top and "no_hair" in top  # hair 'hat' vs the hat
    assert "custom_text" not in s.param("clothing_graphic").options  # font-dependent pixels
    assert s.default_vector().to_dict()["top"] == "short_flat"
    assert get_engine("avataaars").schema.fingerprint == s.fingerprint


def test_every_option_renders_and_differs(engine):
    """Each option of each parameter, on a vector where that parameter shows, gives an image
    unlike every other option of the same parameter (nothing renders nothing, nothing crashes)."""
    s = engine.schema
    base = _showcase(s)
    rows, owners = [], []
    for j, p in enumerate(s.discrete):
        block = np.repeat(base[None], len(p.options), axis=0)  # (K, n_d)
        block[:, j] = np.arange(len(p.options))
        rows.append(block)
        owners += [(p.name, o) for o in p.options]
    out = engine.render(_batch(s, np.concatenate(rows)), 48)
    assert out.images.shape == (len(owners), 48, 48, 3) and out.masks is None
    seen: dict[str, dict[str, str]] = {}
    for (name, option), img in zip(owners, out.images):
        digest = hashlib.sha1(img.tobytes()).hexdigest()
        clash = seen.setdefault(name, {}).get(digest)
        assert clash is None, f"{name}: options {clash!r} and {option!r} render the same"
        seen[name][digest] = option
    # the avatar covers a good part of the picture whatever the option
    bg = out.images[:, 0, 0]  # (N, 3): the corner shows the background
    covered = (np.abs(out.images.astype(int) - bg[:, None, None]).sum(-1) > 30).mean((1, 2))
    worst = int(covered.argmin())
    assert covered.min() > 0.3, f"{owners[worst]} covers only {covered.min():.0%}"


def test_deterministic_across_batches_and_instances(engine):
    s = engine.schema
    batch = s.sample(seed=3, ids=range(6))
    a = engine.render(batch, 64).images
    b = engine.render(batch.select([5, 4, 3, 2, 1, 0]), 64).images[::-1]
    with AvataaarsEngine() as other:
        c = other.render(batch.select([2]), 64).images[0]
    assert np.array_equal(a, b)
    assert np.array_equal(a[2], c)
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("size", [16, 100, 264, 300])
def test_sizes(engine, size):
    out = engine.render(engine.schema.sample(seed=1, ids=[0, 1]), size)
    assert out.images.shape == (2, size, size, 3) and out.images.dtype == np.uint8
    assert out.masks is None
    assert engine.render(engine.schema.default_vector().batch()).images.shape == (1, 256, 256, 3)


def test_small_sizes_match_large(engine):
    """Small renders are supersampled: masked parts (skin, hair, clothes) are whole, and the
    picture equals a large render scaled down."""
    s = engine.schema
    batch = s.sample(seed=7, ids=range(4))
    small = engine.render(batch, 64).images.astype(int)
    big = engine.render(batch, 512).images
    down = np.stack([np.asarray(Image.fromarray(b).resize((64, 64), Image.BOX)) for b in big])
    assert np.abs(small - down).mean() < 2.0


def test_crop_is_a_centred_head_and_shoulders(engine):
    """Eyes at 42% of the height, 0.38 and 0.62 of the width; skin on the cheek; the
    background colour at the top corners; clothing at the bottom centre."""
    s = engine.schema
    img = engine.render(s.default_vector().batch(), 256).images[0].astype(int)
    eye_y = round(0.42 * 256)
    for x in (0.384, 0.616):
        assert img[eye_y, round(x * 256)].sum() < 280, "eye pixel should be dark (skin sums 560)"
    assert np.abs(img[eye_y + 16, 80] - (0xED, 0xB9, 0x8A)).max() < 12  # light skin, cheek
    assert np.abs(img[2, 2] - (0x65, 0xC9, 0xFF)).max() < 3  # background blue_01
    assert np.abs(img[250, 128] - (0x3C, 0x4F, 0x5C)).max() < 12  # heather shirt


def test_bad_vector_is_rejected(engine):
    s = engine.schema
    d = s.default_vector().discrete.copy()
    d[0] = len(s.param("top").options)
    with pytest.raises(InvalidVectorError, match="'top'"):
        engine.render(_batch(s, d[None]), 32)
