"""The built-in procedural face domain and the face-folder loader."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from swiftavatar.faces import (FaceAttributes, FaceDomainConfig, FaceFolder, FaceFolderError,
                               contact_sheet, face_attributes, face_images, load_attributes,
                               render_faces, write_face_batch, write_face_folder)
from swiftavatar.faces import attributes as A
from swiftavatar.semantics import EYEGLASSES, HAIR, NUM_CLASSES, SKIN

LUMA = np.array([0.2126, 0.7152, 0.0722])


def _erode(m: np.ndarray, r: int = 1) -> np.ndarray:
    """Shrink a boolean mask by r pixels (drops the blended boundary pixels)."""
    out = m.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out &= np.roll(m, (dy, dx), (0, 1))
    return out


@pytest.fixture(scope="module")
def batch64():
    return render_faces(11, range(48), 64)


# ---- shapes, determinism -------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 96])
def test_shapes_and_dtypes(size):
    b = render_faces(0, [0, 1, 2], size)
    assert b.images.shape == (3, size, size, 3) and b.images.dtype == np.uint8
    assert b.masks.shape == (3, size, size) and b.masks.dtype == np.uint8
    assert int(b.masks.max()) < NUM_CLASSES
    assert len(b) == 3 and b.ids == (0, 1, 2) and b.seed == 0
    assert all(isinstance(a, FaceAttributes) for a in b.attributes)
    images, masks = face_images(0, [0, 1, 2], size)
    assert np.array_equal(images, b.images) and np.array_equal(masks, b.masks)


def test_size_comes_from_config_when_not_given():
    b = render_faces(0, [0], config=FaceDomainConfig(size=40))
    assert b.images.shape == (1, 40, 40, 3)
    assert render_faces(0, [0], 24, FaceDomainConfig(size=40)).images.shape == (1, 24, 24, 3)


def test_deterministic_and_independent_of_batch():
    a = render_faces(7, [1, 3, 5], 48)
    b = render_faces(7, [1, 3, 5], 48)
    assert a.images.tobytes() == b.images.tobytes() and a.masks.tobytes() == b.masks.tobytes()
    alone = render_faces(7, [3], 48)
    assert alone.images[0].tobytes() == a.images[1].tobytes()
    assert alone.masks[0].tobytes() == a.masks[1].tobytes()
    assert alone.attributes[0] == a.attributes[1]
    other = render_faces(8, [3], 48)
    assert other.images[0].tobytes() != alone.images[0].tobytes()
    assert not np.array_equal(a.images[0], a.images[1])


def test_face_attributes_replays_the_records_without_rendering():
    cfg = FaceDomainConfig(p_glasses=0.6)
    assert face_attributes(3, [4, 9], cfg) == render_faces(3, [4, 9], 32, cfg).attributes


def test_bad_seed_ids_and_config_are_rejected():
    for seed, ids in ((-1, [0]), (0, [-2]), (0, [1.5]), (0, [True])):
        with pytest.raises(ValueError):
            render_faces(seed, ids, 32)
    with pytest.raises(ValueError, match="p_glasses"):
        FaceDomainConfig(p_glasses=1.5)
    with pytest.raises(ValueError, match="jpeg_quality"):
        FaceDomainConfig(jpeg_quality=(90, 40))
    with pytest.raises(ValueError, match="size"):
        FaceDomainConfig(size=4)


# ---- the masks agree with the pictures ---------------------------------------------

def test_hair_and_skin_pixels_match_the_record_colours(batch64):
    hair_err, hair_lum, hair_ref, skin_err, skin_lum, skin_ref = [], [], [], [], [], []
    for img, m, att in zip(batch64.images, batch64.masks, batch64.attributes):
        hair = _erode(m == HAIR)
        if hair.sum() > 30:
            mean = img[hair].mean(0)
            hair_err.append(np.abs(mean - att.hair_rgb).mean())
            hair_lum.append(mean @ LUMA)
            hair_ref.append(np.asarray(att.hair_rgb) @ LUMA)
        skin = _erode(m == SKIN)
        assert skin.sum() > 100
        mean = img[skin].mean(0)
        skin_err.append(np.abs(mean - att.skin_rgb).mean())
        skin_lum.append(mean @ LUMA)
        skin_ref.append(np.asarray(att.skin_rgb) @ LUMA)
    assert len(hair_err) > 30
    # lighting, sheen and the camera move colours, but the named colour stays close ...
    assert np.median(hair_err) < 30 and np.median(skin_err) < 15
    # ... and darker records give darker pixels, across the whole range
    assert np.corrcoef(hair_lum, hair_ref)[0, 1] > 0.85
    assert np.corrcoef(skin_lum, skin_ref)[0, 1] > 0.95


def test_nearest_named_skin_tone_is_mostly_the_recorded_one(batch64):
    names = list(A.SKIN_TONES)
    ref = np.array([A.SKIN_TONES[k] for k in names], float)
    hits = 0
    for img, m, att in zip(batch64.images, batch64.masks, batch64.attributes):
        mean = img[_erode(m == SKIN)].mean(0)
        hits += names[int(np.argmin(np.abs(ref - mean).sum(1)))] == att.skin_tone
    assert hits / len(batch64) > 0.6          # chance is 1/7


def test_glasses_mask_follows_the_record():
    with_g = render_faces(2, range(8), 64, FaceDomainConfig(p_glasses=1.0, p_sunglasses=0.5))
    without = render_faces(2, range(8), 64, FaceDomainConfig(p_glasses=0.0))
    for m, att in zip(with_g.masks, with_g.attributes):
        assert att.glasses != "none" and (m == EYEGLASSES).sum() > 40
    for m, att in zip(without.masks, without.attributes):
        assert att.glasses == "none" and not (m == EYEGLASSES).any()
    # sunglass lenses are dark, clear lenses show the face
    lum = {True: [], False: []}
    for img, m, att in zip(with_g.images, with_g.masks, with_g.attributes):
        lum[att.glasses == "sunglasses"].append(img[_erode(m == EYEGLASSES)].mean())
    assert lum[True] and lum[False] and max(lum[True]) < min(lum[False])


def test_bald_faces_have_no_hair_pixels():
    ids = [i for i, a in enumerate(face_attributes(5, range(120))) if a.hair_style == "bald"][:3]
    assert ids
    b = render_faces(5, ids, 48)
    assert not (b.masks == HAIR).any()
    assert (b.masks == SKIN).sum(axis=(1, 2)).min() > 300


def test_faces_are_shaded_not_flat_fills():
    """Inside the skin region a photo has many colours, a smooth spread of brightness and small
    neighbour steps; a cartoon fill of the same masks (one colour per region, same camera) has
    almost none of that."""
    b = render_faces(4, range(6), 128)
    for img, m in zip(b.images, b.masks):
        skin = _erode(m == SKIN, 2)
        lum = img.astype(float) @ LUMA
        colours = len(np.unique(img[skin].reshape(-1, 3), axis=0))
        assert colours > 0.2 * skin.sum()
        spread = lum[skin].std()
        assert spread > 5.0
        step = np.abs(np.diff(lum, axis=1))[skin[:, 1:] & skin[:, :-1]]
        assert np.median(step) < min(8.0, 0.45 * spread)      # smooth, not speckle
        flat = np.zeros_like(img)
        for c in np.unique(m):
            flat[m == c] = img[m == c].mean(0)
        flat_lum = flat.astype(float) @ LUMA
        assert len(np.unique(flat[skin].reshape(-1, 3), axis=0)) == 1
        assert flat_lum[skin].std() < 0.1 * lum[skin].std()


# ---- the attribute record ----------------------------------------------------------

def test_attribute_distribution_covers_every_category():
    recs = face_attributes(0, range(200))
    cats = {"skin_tone": A.SKIN_TONES, "hair_color": A.HAIR_COLORS, "hair_style": A.HAIR_STYLES,
            "hair_length": A.HAIR_LENGTHS, "glasses": A.GLASSES, "facial_hair": A.FACIAL_HAIR,
            "headwear": A.HEADWEAR, "face_shape": A.FACE_SHAPES, "eye_color": A.EYE_COLORS,
            "cloth_color": A.CLOTH_COLORS, "background": A.BACKGROUNDS,
            "earrings": A.EARRINGS, "clothing": A.CLOTHING}
    for field, options in cats.items():
        seen = {getattr(r, field) for r in recs}
        assert seen == set(options), (field, set(options) - seen)
    assert {r.bangs for r in recs} == {True, False}
    unit = ("face_width", "jaw_width", "chin_length", "eye_size", "eye_spacing", "brow_thickness",
            "brow_tilt", "mouth_width", "lip_thickness", "nose_size", "smile")
    for field in unit:
        v = np.array([getattr(r, field) for r in recs])
        assert v.min() >= 0 and v.max() <= 1 and v.std() > 0.1, field
    for r in recs:
        assert r.hair_length == A.HAIR_LENGTH[r.hair_style]
        assert not r.bangs or r.hair_style in A.BANGS_STYLES
        assert r.earrings == "none" or r.hair_style in A.EARS_SHOWING


def test_discrete_labels_are_toon_engine_options():
    toon = pytest.importorskip("swiftavatar.engines.toon_schema")
    pairs = [(A.SKIN_TONES, "skin_tone"), (A.HAIR_COLORS, "hair_color"),
             (A.HAIR_STYLES, "hair_style"), (A.GLASSES, "glasses"),
             (A.FACIAL_HAIR, "facial_hair"), (A.HEADWEAR, "headwear"), (A.EARRINGS, "earrings"),
             (A.CLOTHING, "clothing"), (A.EYE_COLORS, "eye_color"),
             (A.CLOTH_COLORS, "clothing_color")]
    for labels, param in pairs:
        assert set(labels) <= set(toon.SCHEMA.param(param).options), param


def test_attribute_record_round_trips_through_json(tmp_path):
    recs = face_attributes(1, range(3))
    assert [FaceAttributes.from_dict(r.to_dict()) for r in recs] == recs
    with pytest.raises(ValueError, match="missing"):
        FaceAttributes.from_dict({k: v for k, v in recs[0].to_dict().items() if k != "smile"})


def test_contact_sheet_pairs_faces_with_masks():
    sheet = contact_sheet(0, n=4, size=32, ncols=4)
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * 34 + 2, 4 * 34 + 2, 3)


# ---- the folder loader -------------------------------------------------------------

def test_face_folder_round_trip(tmp_path):
    b = render_faces(9, [5, 2, 7], 48)
    write_face_batch(b, tmp_path / "faces")
    ff = FaceFolder(tmp_path / "faces", size=48)
    assert len(ff) == 3 and ff.names == ["s9_0000002", "s9_0000005", "s9_0000007"]
    order = [1, 0, 2]                         # names sort by id: 2, 5, 7
    images, masks = ff.load_batch(range(3))
    assert np.array_equal(images, b.images[order]) and np.array_equal(masks, b.masks[order])
    img, mask = ff[-1]
    assert np.array_equal(img, b.images[2]) and np.array_equal(mask, b.masks[2])
    recs = load_attributes(tmp_path / "faces" / "attributes.jsonl")
    assert recs["s9_0000005"] == b.attributes[0]
    small = FaceFolder(tmp_path / "faces", size=24)
    img, mask = small[0]
    assert img.shape == (24, 24, 3) and mask.shape == (24, 24)
    assert set(np.unique(mask)) <= set(np.unique(b.masks[1]))     # nearest: no new ids
    with pytest.raises(IndexError):
        ff[3]


def test_face_folder_reads_jpeg_non_square_and_grey(tmp_path):
    root = tmp_path / "real"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rgb = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "images" / "a.jpg", quality=90)
    Image.fromarray(rgb[..., 0]).save(root / "images" / "b.png")          # grey image
    mask = np.zeros((30, 40), np.uint8)
    mask[:, 20:] = 7
    Image.fromarray(mask).save(root / "masks" / "a.png")
    Image.fromarray(np.stack([mask] * 3, -1)).save(root / "masks" / "b.png")  # grey stored as RGB
    images, masks = FaceFolder(root, 32).load_batch([0, 1])
    assert images.shape == (2, 32, 32, 3) and masks.shape == (2, 32, 32)
    assert set(np.unique(masks)) == {0, 7}
    assert masks[0, :, 0].max() == 0 and masks[0, :, -1].min() == 7       # centre crop kept order


def _folder(tmp_path, n=2, size=16):
    images = np.full((n, size, size, 3), 120, np.uint8)
    masks = np.ones((n, size, size), np.uint8)
    return write_face_folder(tmp_path / "f", images, masks, names=[f"x{i}" for i in range(n)])


def test_face_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FaceFolder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceFolderError, match="no images/"):
        FaceFolder(tmp_path / "empty")
    root = _folder(tmp_path)
    (root / "masks" / "x1.png").unlink()
    with pytest.raises(FaceFolderError, match=r"image x1\.png has no mask"):
        FaceFolder(root)


def test_face_folder_rejects_bad_masks_and_unreadable_files(tmp_path):
    root = _folder(tmp_path)
    Image.fromarray(np.full((16, 16), 13, np.uint8)).save(root / "masks" / "x0.png")
    ff = FaceFolder(root, 16)
    with pytest.raises(FaceFolderError, match=r"x0\.png holds class id 13"):
        ff[0]
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(root / "masks" / "x0.png")
    with pytest.raises(FaceFolderError, match="colour image"):
        ff[0]
    (root / "images" / "x1.png").write_bytes(b"not an image at all")
    with pytest.raises(FaceFolderError, match=r"cannot read image .*x1\.png"):
        ff[1]
    (root / "masks" / "x1.png").write_bytes(b"\x89PNG broken")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "images" / "x1.png")
    with pytest.raises(FaceFolderError, match=r"cannot read mask .*x1\.png"):
        ff[1]


def test_write_face_folder_validates_input(tmp_path):
    good = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="images must be"):
        write_face_folder(tmp_path, good[..., 0], np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="class id 20"):
        write_face_folder(tmp_path, good, np.full((1, 8, 8), 20, np.uint8))
    with pytest.raises(ValueError, match="image_format"):
        write_face_folder(tmp_path, good, np.zeros((1, 8, 8), np.uint8), image_format="bmp")
    write_face_folder(tmp_path, good, np.zeros((1, 8, 8), np.uint8), image_format="jpg")
    assert (tmp_path / "images" / "000000.jpg").is_file()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_records_are_frozen():
    rec = face_attributes(0, [0])[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.smile = 0.0  # type: ignore[misc]
