"""Wild backdrops of the randomised face domain: any-hue gradients, a texture (stripes,
checks, mottling), and blurred shapes that read as windows, furniture, foliage or sky, all out
of focus. Unlit (a backdrop is far behind the person), like the default domain's scenes."""
from __future__ import annotations

import colorsys

import numpy as np

from swiftavatar.faces.layout import Canvas
from swiftavatar.faces.shading import F32, blur, noise2d, srgb_to_linear, upsample
from swiftavatar.semantics import BACKGROUND


def _hsv(rng: np.random.Generator, v: tuple[float, float]) -> np.ndarray:
    """A random colour (linear RGB): any hue, saturation up to 0.75, value in `v`."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.75), rng.uniform(*v))
    return srgb_to_linear(np.asarray(rgb, F32))


def backdrop_image(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """(size, size, 3) linear RGB backdrop for a scene `kind` (studio / indoor / outdoor)."""
    n = min(size, 64)                        # out of focus: paint small, then enlarge
    s = (np.arange(n, dtype=F32) + 0.5) / n * 2 - 1
    sx, sy = np.meshgrid(s, s)
    ang = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + 0.5 * (np.cos(ang) * sx + np.sin(ang) * sy), 0, 1)[..., None]
    img = _hsv(rng, (0.1, 0.95)) * (1 - t) + _hsv(rng, (0.1, 0.95)) * t
    texture = int(rng.integers(3))           # stripes / checks / mottling
    amp = rng.uniform(0.03, 0.25)
    freq = rng.uniform(3, 14)
    rot = rng.uniform(0, np.pi)
    u = np.cos(rot) * sx + np.sin(rot) * sy
    v = -np.sin(rot) * sx + np.cos(rot) * sy
    if texture == 0:
        pattern = np.sin(u * freq * np.pi)
    elif texture == 1:
        pattern = np.sign(np.sin(u * freq * np.pi) * np.sin(v * freq * np.pi))
    else:
        pattern = noise2d(rng, n, freq)
    img = img * (1 + amp * pattern[..., None])
    n_shapes = int(rng.integers(0, 3 if kind == "studio" else 9))
    for _ in range(n_shapes):
        cx, cy = rng.uniform(-1, 1), rng.uniform(-1, 1)
        w, h = rng.uniform(0.05, 0.6), rng.uniform(0.05, 0.6)
        if kind == "outdoor" or rng.random() < 0.3:          # blobs: foliage, lamps, people
            d = np.sqrt(((sx - cx) / w) ** 2 + ((sy - cy) / h) ** 2) - 1
        else:                                                # boxes: windows, shelves, doors
            d = np.maximum(np.abs(sx - cx) / w, np.abs(sy - cy) / h) - 1
        a = (rng.uniform(0.3, 0.9) * np.clip(-d * 4, 0, 1))[..., None]
        img = img * (1 - a) + _hsv(rng, (0.05, 1.0)) * 1.1 * a
    if kind == "outdoor" and rng.random() < 0.5:             # a bright sky above a horizon
        horizon = rng.uniform(-0.6, 0.2)
        a = np.clip((horizon - sy) * 6, 0, 1)[..., None]
        img = img * (1 - a) + _hsv(rng, (0.7, 1.0)) * a
    img = blur(np.clip(img, 0, 1.5).astype(F32), rng.uniform(0.005, 0.04) * n)
    return upsample(img.astype(F32), size)


def paint_backdrop(cv: Canvas, kind: str, rng: np.random.Generator) -> None:
    """Replace the canvas's background (painted first, over everything) with a wild one."""
    full = cv.grid.size
    cv.paint(np.ones((full, full), F32), backdrop_image(rng, kind, full), BACKGROUND)


__all__ = ["backdrop_image", "paint_backdrop"]
