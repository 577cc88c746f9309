"""The camera: pose jitter of the aligned crop (as a sampling grid) and the photo pipeline's
degradations (defocus blur, sensor noise, JPEG round trip)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from swiftavatar.faces.shading import F32, blur


Window = tuple[slice, slice]


@dataclass(frozen=True)
class Grid:
    """Head-frame coordinates of every pixel centre: x right, y down, 1 = half the nominal crop
    side. `pix` is one pixel's size in those units (for anti-aliasing and gradients)."""

    x: np.ndarray   # (H, W) float32
    y: np.ndarray   # (H, W) float32
    pix: float
    size: int
    # head -> screen: cos and sin of the roll, zoom, screen offsets x and y
    affine: tuple[float, float, float, float, float] = (1.0, 0.0, 1.0, 0.0, 0.0)

    def window(self, x0: float, x1: float, y0: float, y1: float, pad: int = 2) -> Window | None:
        """Pixel slices covering the head-frame box [x0, x1] x [y0, y1] (None if off-image).
        Parts evaluated inside their window cost far less than on the full frame."""
        c, si, z, ox, oy = self.affine
        hx = np.array([x0, x1, x0, x1]) * z
        hy = (np.array([y0, y0, y1, y1]) - EYE_LINE) * z
        sx, sy = c * hx - si * hy + ox, si * hx + c * hy + oy
        px, py = (sx + 1) / 2 * self.size - 0.5, (sy + 1) / 2 * self.size - 0.5
        c0 = max(0, int(np.floor(px.min())) - pad)
        c1 = min(self.size, int(np.ceil(px.max())) + pad + 1)
        r0 = max(0, int(np.floor(py.min())) - pad)
        r1 = min(self.size, int(np.ceil(py.max())) + pad + 1)
        if c0 >= c1 or r0 >= r1:
            return None
        return (slice(r0, r1), slice(c0, c1))


# The aligned crop: the head frame is zoomed by CROP_ZOOM and its eye line (y = EYE_LINE in the
# head frame) lands at 43.5% of the image height, as in aligned face datasets.
CROP_ZOOM = 1.15
EYE_LINE = -0.16
EYE_SCREEN = -0.13


def head_grid(size: int, roll_deg: float, scale: float, shift: tuple[float, float]) -> Grid:
    """Pixel grid mapped into the head frame: the head is drawn scaled by `scale`, rotated by
    `roll_deg` (clockwise in the image, about the eye line's centre) and moved by `shift`
    (fractions of the side)."""
    s = (np.arange(size, dtype=F32) + 0.5) / size * 2 - 1          # (W,) screen coords
    sx, sy = np.meshgrid(s, s)                                      # (H, W)
    sx, sy = sx - 2 * shift[0], sy - 2 * shift[1] - EYE_SCREEN
    r = np.radians(roll_deg)
    c, si = np.cos(r), np.sin(r)
    z = scale * CROP_ZOOM
    x = (c * sx + si * sy) / z
    y = (-si * sx + c * sy) / z + EYE_LINE
    return Grid(x=x.astype(F32), y=y.astype(F32), pix=2.0 / size / z, size=size,
                affine=(float(c), float(si), float(z), 2 * shift[0], 2 * shift[1] + EYE_SCREEN))


def defocus(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """(H, W, 3) float image blurred by a Gaussian of `sigma_px` pixels."""
    return blur(img, sigma_px)


def sensor_noise(img: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Read noise plus signal-dependent shot noise, partly shared across channels (luma)."""
    h, w, _ = img.shape
    luma = rng.standard_normal((h, w, 1)).astype(F32)
    chroma = rng.standard_normal((h, w, 3)).astype(F32)
    n = 0.7 * luma + 0.5 * chroma
    level = std * (0.6 + 0.8 * np.sqrt(np.clip(img, 0, 1)))
    return (img + n * level).astype(F32)


def jpeg_roundtrip(img_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode (H, W, 3) uint8 with PIL JPEG at `quality` (4:2:0 chroma, like phones)."""
    buf = io.BytesIO()
    Image.fromarray(img_u8).save(buf, format="JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def develop(img_srgb: np.ndarray, *, blur_sigma: float, noise_std: float, jpeg_quality: int,
            rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float sRGB in [0, 1] -> (H, W, 3) uint8 after defocus, noise, 8-bit, JPEG."""
    size = img_srgb.shape[0]
    out = defocus(img_srgb, blur_sigma * size)
    out = sensor_noise(out, noise_std, rng)
    u8 = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    return jpeg_roundtrip(u8, jpeg_quality)
