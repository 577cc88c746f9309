"""Reading user images for prediction: every bad-input case names the file and the problem."""
from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swiftavatar.faces.folder import FaceFolder, FaceFolderError, write_face_folder
from swiftavatar.selfies import ImageInputError, center_square, load_face_image, resize_square


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A tiny PNG (well under 100 bytes) whose header declares width x height RGB pixels: a
    decompression bomb when the declared size is large. Valid IHDR and IEND, a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


# 20000x20000: Pillow's DecompressionBombError; 10000x10000: its warning; 9000x8000: our cap
BOMB_SIZES = [(20000, 20000), (10000, 10000), (9000, 8000)]


@pytest.mark.parametrize("width, height", BOMB_SIZES)
def test_a_decompression_bomb_is_refused_before_decoding(width, height, tmp_path):
    path = write_png_header(tmp_path / "bomb.png", width, height)
    assert path.stat().st_size < 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no DecompressionBombWarning escapes
        with pytest.raises(ImageInputError, match=r"bomb\.png: .*(too many pixels|too large)"):
            load_face_image(path)


def test_face_folder_reports_a_decompression_bomb_like_a_bad_image(tmp_path):
    root = write_face_folder(tmp_path / "ff", np.zeros((2, 16, 16, 3), np.uint8),
                             np.zeros((2, 16, 16), np.uint8))
    ff = FaceFolder(root, 16)
    write_png_header(root / "images" / "000001.png", 20000, 20000)
    assert ff[0][0].shape == (16, 16, 3)
    with pytest.raises(FaceFolderError, match=r"cannot read image .*000001\.png.*too many"):
        ff[1]
    write_png_header(root / "masks" / "000000.png", 9000, 8000)
    with pytest.raises(FaceFolderError, match=r"cannot read mask .*000000\.png.*too large"):
        ff[0]


def _photo(h: int = 80, w: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_image_is_centre_cropped_to_a_square(tmp_path):
    img = _photo(80, 60)
    Image.fromarray(img).save(tmp_path / "a.png")
    out = load_face_image(tmp_path / "a.png")
    assert out.shape == (60, 60, 3) and out.dtype == np.uint8
    assert np.array_equal(out, img[10:70])
    assert resize_square(out, 32).shape == (32, 32, 3)
    assert center_square(np.zeros((5, 9, 3), np.uint8)).shape == (5, 5, 3)


def test_transparency_palette_and_cmyk_are_converted(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255                                   # red, fully transparent left half
    rgba[:, 20:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    out = load_face_image(tmp_path / "t.png")
    assert out[0, 0].tolist() == [128, 128, 128] and out[0, 39].tolist() == [255, 0, 0]
    Image.fromarray(_photo(40, 40)).convert("P").save(tmp_path / "p.png")
    assert load_face_image(tmp_path / "p.png").shape == (40, 40, 3)
    Image.fromarray(_photo(40, 40)).convert("CMYK").save(tmp_path / "c.jpg")
    assert load_face_image(tmp_path / "c.jpg").shape == (40, 40, 3)


@pytest.mark.parametrize("case, words", [
    ("missing", "no such file"),
    ("directory", "not a file"),
    ("text", "not an image file"),
    ("truncated", "corrupt or truncated"),
    ("tiny", "too small"),
    ("gray", "grayscale"),
    ("gray16", "grayscale"),
])
def test_bad_images_raise_naming_file_and_problem(case, words, tmp_path):
    path = tmp_path / f"{case}.png"
    if case == "directory":
        path.mkdir()
    elif case == "text":
        path.write_text("not a picture")
    elif case == "truncated":
        Image.fromarray(_photo(64, 64)).save(tmp_path / "full.jpg", quality=95)
        data = (tmp_path / "full.jpg").read_bytes()
        path = tmp_path / "truncated.jpg"
        path.write_bytes(data[: len(data) // 2])
    elif case == "tiny":
        Image.fromarray(_photo(20, 200)).save(path)
    elif case == "gray":
        Image.fromarray(_photo(64, 64)[..., 0]).save(path)
    elif case == "gray16":
        Image.fromarray((_photo(64, 64)[..., 0].astype(np.uint16) * 200)).save(path)
    with pytest.raises(ImageInputError, match=words) as info:
        load_face_image(path)
    assert str(path) in str(info.value)
