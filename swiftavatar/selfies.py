"""Reading user face images for prediction: checks that name the problem, a square crop.

The estimator is trained on head-and-shoulders crops with the face in the middle (the built-in
face domain and G_real's output). A selfie is checked, converted to RGB where that loses
nothing (palette, RGBA on grey, CMYK), centre-cropped to a square and returned as uint8.
Grayscale images are refused: skin and hair colours are half of what the estimator predicts.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

MIN_SIDE = 32            # smaller images hold no usable face
MAX_PIXELS = 64_000_000  # decompression-bomb cap, checked on the header before decoding
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class ImageInputError(ValueError):
    """One input image cannot be used; the message names the file and what to do."""


class ImageTooLargeError(ImageInputError):
    """An image over the pixel cap (or a decompression bomb)."""


def load_face_image(path: str | Path, *, min_side: int = MIN_SIDE) -> np.ndarray:
    """(S, S, 3) uint8 RGB, the centre square of the image at `path`."""
    return center_square(load_rgb_image(path, min_side=min_side))


def load_rgb_image(path: str | Path, *, min_side: int = MIN_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 RGB of the whole image at `path`, after the checks above."""
    p = Path(path)
    if not p.exists():
        raise ImageInputError(f"{p}: no such file")
    if not p.is_file():
        raise ImageInputError(f"{p}: not a file")
    return decode_rgb_image(p, str(p), min_side=min_side)


def decode_rgb_image(source: str | Path | BinaryIO, label: str, *, min_side: int = MIN_SIDE,
                     max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file or binary file object (an upload), after the
    checks above; messages start with `label`. Over `max_pixels`: ImageTooLargeError."""
    from PIL import UnidentifiedImageError

    try:
        with open_image(source, max_pixels=max_pixels, label=label) as im:
            w, h = im.size
            im.load()                                  # decode now: truncated files fail here
            mode = im.mode
            if mode in _GRAY_MODES or (mode == "P" and _palette_is_gray(im)):
                raise ImageInputError(f"{label}: a grayscale image ({mode}); the estimator "
                                      f"needs a colour photo (skin and hair colours)")
            rgb = _to_rgb(im)
    except ImageInputError:
        raise
    except UnidentifiedImageError:
        raise ImageInputError(f"{label}: not an image file Pillow can read (JPEG, PNG, WebP, "
                              f"...)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageInputError(f"{label}: the image is corrupt or truncated ({err})") from None
    if min(w, h) < min_side:
        raise ImageInputError(f"{label}: {w}x{h} is too small; give a face crop of at least "
                              f"{min_side}x{min_side} pixels")
    return rgb


@contextlib.contextmanager
def open_image(path: str | Path | BinaryIO, *, max_pixels: int = MAX_PIXELS,
               label: str | None = None) -> Iterator:
    """Open the image at `path` (or a binary file object) with Pillow, refusing one whose
    header declares more than `max_pixels` before anything is decoded (a decompression bomb:
    a few bytes that claim 20000x20000) with ImageTooLargeError; so are Pillow's own
    DecompressionBombError/Warning. Other read errors (unidentified, truncated) propagate for
    the caller to word. Messages start with `label` (default: the path)."""
    from PIL import Image

    p = label if label is not None else Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLargeError(f"{p}: the image declares too many pixels (over "
                                     f"{_megapixels(max_pixels)} megapixels; a decompression "
                                     f"bomb?); downscale it to a few megapixels") from None
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageTooLargeError(f"{p}: {w}x{h} is too large (over "
                                     f"{_megapixels(max_pixels)} megapixels); downscale it to "
                                     f"a few megapixels")
        yield im


def _megapixels(n: int) -> str:
    return f"{n / 1_000_000:g}" if n < 1_000_000 else str(n // 1_000_000)


def _palette_is_gray(im) -> bool:
    pal = im.getpalette() or []
    rgb = np.asarray(pal[: len(pal) // 3 * 3], np.int16).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb.max(1) - rgb.min(1) <= 2).all())


def _to_rgb(im) -> np.ndarray:
    """Any colour mode -> (H, W, 3) uint8; transparency is composited on mid grey."""
    from PIL import Image

    if im.mode in ("RGBA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return np.asarray(Image.alpha_composite(base, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def center_square(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (S, S, 3), S = min(H, W), the centre square."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    out = np.ascontiguousarray(img[top:top + s, left:left + s])
    assert out.shape == (s, s, 3), out.shape
    return out


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """(S, S, 3) uint8 -> (size, size, 3) uint8 (Lanczos; what the estimator was fed)."""
    from PIL import Image

    if img.shape[0] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))


__all__ = ["ImageInputError", "ImageTooLargeError", "MIN_SIDE", "center_square",
           "decode_rgb_image", "load_face_image", "load_rgb_image", "open_image",
           "resize_square"]
