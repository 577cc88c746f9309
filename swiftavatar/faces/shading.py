"""Light, colour and texture for the procedural faces: all vectorised numpy, float32.

Conventions: image-plane coordinates x (right), y (down), z (towards the camera). Colours are
linear-light RGB in [0, 1] inside the renderer and sRGB only at the very end.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

F32 = np.float32


# ---- colour ----------------------------------------------------------------------------

def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, F32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(F32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(F32)


def rgb255_linear(rgb) -> np.ndarray:
    """(3,) 0-255 sRGB -> (3,) linear float32."""
    return srgb_to_linear(np.asarray(rgb, F32) / 255.0)


def kelvin_rgb(kelvin: float) -> np.ndarray:
    """(3,) linear RGB of a black body at `kelvin`, scaled so 6500 K is white (Planck's law
    sampled at 610/550/465 nm), normalised to unit luminance."""
    lam = np.array([610e-9, 550e-9, 465e-9])
    c2 = 1.4388e-2  # h c / k  [m K]

    def planck(t: float) -> np.ndarray:
        return 1.0 / (lam ** 5 * np.expm1(c2 / (lam * t)))

    rgb = planck(kelvin) / planck(6500.0)
    rgb = rgb / float(rgb @ np.array([0.2126, 0.7152, 0.0722]))
    return rgb.astype(F32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722).astype(F32)


def tonemap(x: np.ndarray, knee: float = 0.75) -> np.ndarray:
    """Identity below `knee`, a soft exponential shoulder towards 1 above (no hard clipping)."""
    head = 1.0 - knee
    over = np.maximum(x - knee, 0.0)
    return np.where(x < knee, x, knee + head * (1.0 - np.exp(-over / head))).astype(F32)


# ---- smooth fields: blur and noise -------------------------------------------------------

@lru_cache(maxsize=64)
def _gauss_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) row-normalised Gaussian weights; edges renormalised (no dark borders)."""
    i = np.arange(n, dtype=np.float64)
    w = np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
    w[w < 1e-4] = 0.0
    return (w / w.sum(1, keepdims=True)).astype(F32)


def blur(field: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of (H, W) or (H, W, C) by `sigma_px` pixels (separable, as two matmuls)."""
    if sigma_px < 0.3:
        return field.astype(F32, copy=False)
    h, w = field.shape[:2]
    s = round(float(sigma_px), 2)
    kh, kw = _gauss_matrix(h, s), _gauss_matrix(w, s)
    if field.ndim == 2:
        return kh @ field.astype(F32) @ kw.T
    c = field.shape[2]
    out = (kh @ field.astype(F32).reshape(h, w * c)).reshape(h, w, c)       # along H
    out = kw @ out.transpose(1, 0, 2).reshape(w, h * c)                      # along W
    return np.ascontiguousarray(out.reshape(w, h, c).transpose(1, 0, 2), dtype=F32)


@lru_cache(maxsize=64)
def _bspline_matrix(n: int, cells: int) -> np.ndarray:
    """(n, cells + 3) cubic B-spline weights mapping `cells + 3` control values onto n pixels."""
    t = (np.arange(n) + 0.5) / n * cells
    i = np.floor(t).astype(int)
    f = t - i
    w = np.stack([(1 - f) ** 3 / 6, (3 * f ** 3 - 6 * f ** 2 + 4) / 6,
                  (-3 * f ** 3 + 3 * f ** 2 + 3 * f + 1) / 6, f ** 3 / 6], 1)
    m = np.zeros((n, cells + 3), np.float64)
    for k in range(4):
        m[np.arange(n), i + k] = w[:, k]
    return m.astype(F32)


@lru_cache(maxsize=32)
def _linear_matrix(n: int, m: int) -> np.ndarray:
    """(n, m) bilinear weights resampling m samples (pixel centres) onto n."""
    t = np.clip((np.arange(n) + 0.5) * m / n - 0.5, 0, m - 1)
    i = np.minimum(np.floor(t).astype(int), m - 2) if m > 1 else np.zeros(n, int)
    f = t - i
    w = np.zeros((n, m), np.float64)
    w[np.arange(n), i] += 1 - f
    if m > 1:
        w[np.arange(n), i + 1] += f
    return w.astype(F32)


def upsample(img: np.ndarray, n: int) -> np.ndarray:
    """Bilinear resize of a square (m, m, C) float image to (n, n, C)."""
    m, _, c = img.shape
    if m == n:
        return img.astype(F32)
    u = _linear_matrix(n, m)
    out = (u @ img.reshape(m, m * c)).reshape(n, m, c)
    out = u @ out.transpose(1, 0, 2).reshape(m, n * c)
    return np.ascontiguousarray(out.reshape(n, n, c).transpose(1, 0, 2), dtype=F32)


def noise2d(rng: np.random.Generator, size: int, cells: float) -> np.ndarray:
    """(size, size) smooth value noise, about zero mean, unit std, `cells` features per side."""
    c = max(1, int(round(cells)))
    ctrl = rng.standard_normal((c + 3, c + 3)).astype(F32)
    m = _bspline_matrix(size, c)
    field = m @ ctrl @ m.T
    return field / F32(0.55)  # the B-spline smooths unit-variance controls to std ~0.55


def noise1d(values: np.ndarray, coord: np.ndarray) -> np.ndarray:
    """Periodic smooth 1-D noise: `values` (n,) looked up at real `coord` (any shape)."""
    n = values.shape[0]
    fl = np.floor(coord)
    f = (coord - fl).astype(F32)
    i = fl.astype(np.int64) % n
    w = f * f * (3 - 2 * f)
    return values[i] * (1 - w) + values[(i + 1) % n] * w


def band_limited_strands(rng: np.random.Generator, coord: np.ndarray, freqs: tuple[float, ...],
                         amps: tuple[float, ...], nyquist: np.ndarray | float) -> np.ndarray:
    """Sum of 1-D noise octaves along `coord`; octaves above `nyquist` (cycles per coord unit
    at that pixel) fade out, so small renders get no aliasing speckle."""
    out = np.zeros(coord.shape, F32)
    for f, a in zip(freqs, amps):
        vals = rng.standard_normal(4096).astype(F32)
        fade = np.clip(1.5 - f / np.maximum(nyquist, 1e-6), 0.0, 1.0).astype(F32)
        out += a * fade * noise1d(vals, coord * f)
    return out


# ---- geometry helpers --------------------------------------------------------------------

def coverage(sdf: np.ndarray, pix: float, soft: float = 1.0) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of the region sdf < 0 (sdf in the same units as pix)."""
    return np.clip(0.5 - sdf / (pix * soft), 0.0, 1.0).astype(F32)


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth union of two signed distances (polynomial smooth minimum, radius k)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return (b * (1 - h) + a * h - k * h * (1 - h)).astype(F32)


def ellipse_sdf(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float,
                ay: float) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (exact on circles)."""
    u, v = (x - cx) / ax, (y - cy) / ay
    f = np.sqrt(u * u + v * v) + 1e-6
    g = np.sqrt((u / ax) ** 2 + (v / ay) ** 2) / f + 1e-6
    return ((f - 1.0) / g).astype(F32)


def dome(sdf: np.ndarray, radius: float, soft: bool = False) -> np.ndarray:
    """Height of a rounded solid whose silhouette is sdf = 0 and edge radius `radius`: a
    sphere-like profile (normals turn edge-on at the silhouette), or with `soft` a sine profile
    whose edge normals stop at ~57 degrees (flesh seen through its subsurface glow)."""
    e = np.clip(-sdf, 0.0, radius)
    if soft:
        return (radius * np.sin(0.5 * np.pi * e / radius)).astype(F32)
    return np.sqrt(e * (2 * radius - e)).astype(F32)


def normals(height: np.ndarray, pix: float) -> np.ndarray:
    """(H, W) height (same units as pix) -> (H, W, 3) unit normals."""
    gy, gx = np.gradient(height, pix)
    n = np.stack([-gx, -gy, np.ones_like(gx)], -1)
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(F32)


# ---- lighting ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Light:
    """A key light (direction towards the light, colour x intensity) plus a sky/ground fill."""

    direction: np.ndarray   # (3,) unit, x right, y down, z to camera
    color: np.ndarray       # (3,) linear RGB, intensity included
    sky: np.ndarray         # (3,) fill from above
    ground: np.ndarray      # (3,) fill from below

    @classmethod
    def from_angles(cls, azimuth_deg: float, elevation_deg: float, kelvin: float,
                    intensity: float, ambient: float) -> "Light":
        az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
        d = np.array([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)], F32)
        key = kelvin_rgb(kelvin) * F32(intensity)
        fill = kelvin_rgb(6500.0 + 0.5 * (6500.0 - kelvin))  # fill leans the other way
        return cls(direction=d / np.linalg.norm(d), color=key.astype(F32),
                   sky=(fill * F32(ambient)).astype(F32),
                   ground=(kelvin_rgb(kelvin) * F32(ambient * 0.45)).astype(F32))

    @property
    def half(self) -> np.ndarray:
        h = self.direction + np.array([0, 0, 1], F32)
        return (h / np.linalg.norm(h)).astype(F32)

    def ambient_term(self, n: np.ndarray, occlusion: np.ndarray | float = 1.0) -> np.ndarray:
        """(H, W, 3) hemisphere fill: sky from above (-y), ground from below."""
        up = np.clip(0.5 - 0.5 * n[..., 1], 0, 1)
        if isinstance(occlusion, np.ndarray):
            return (up[..., None] * ((self.sky - self.ground) * occlusion[..., None])
                    + self.ground * occlusion[..., None]).astype(F32)
        return ((up[..., None] * (self.sky - self.ground) + self.ground) * occlusion).astype(F32)


def shade(albedo: np.ndarray, n: np.ndarray, light: Light, *, wrap=(0.0, 0.0, 0.0),
          spec: np.ndarray | float = 0.0, shininess: float = 30.0,
          occlusion: np.ndarray | float = 1.0, shadow: np.ndarray | float = 1.0) -> np.ndarray:
    """Lambert with per-channel wrap (a cheap subsurface look: red light wraps further round the
    terminator) + Blinn-Phong highlight + hemisphere fill. Returns (H, W, 3) linear RGB."""
    ndl = n @ light.direction                                      # (H, W)
    w = np.asarray(wrap, F32)
    diff = np.clip((ndl[..., None] + w) / (1 + w), 0, None)        # (H, W, 3)
    sh = shadow[..., None] if isinstance(shadow, np.ndarray) else shadow
    direct = diff * light.color * sh
    lit = albedo * (direct + light.ambient_term(n, occlusion))
    if np.any(np.asarray(spec) != 0):
        ndh = np.clip(n @ light.half, 0, 1)
        s = spec * ndh ** shininess * (ndl > 0)                    # (H, W)
        lit = lit + s[..., None] * light.color * sh
    return lit.astype(F32)


def kajiya_kay(tangent: np.ndarray, light: Light,
               shininess: float) -> tuple[np.ndarray, np.ndarray]:
    """Hair terms for unit strand tangents (H, W, 3): diffuse sin(T, L), specular sin(T, H)^p."""
    tl = tangent @ light.direction
    th = tangent @ light.half
    diff = np.sqrt(np.clip(1 - tl * tl, 0, 1))
    spec = np.sqrt(np.clip(1 - th * th, 0, 1)) ** shininess
    return diff.astype(F32), spec.astype(F32)


def heightfield_shadow(height: np.ndarray, light: Light, pix: float, steps: int = 4,
                       reach: float = 0.12) -> np.ndarray:
    """(H, W) in [0, 1]: 0 where the height field blocks the key light (nose, brow, hair)."""
    d = light.direction
    flat = float(np.hypot(d[0], d[1]))
    if flat < 1e-3:
        return np.ones_like(height)
    slope = d[2] / flat                       # rise of the light ray per unit of travel
    lit = np.ones_like(height)
    for k in range(1, steps + 1):
        dist = reach * k / steps
        dx, dy = int(round(d[0] / flat * dist / pix)), int(round(d[1] / flat * dist / pix))
        if dx == 0 and dy == 0:
            continue
        shifted = np.roll(height, (-dy, -dx), axis=(0, 1))
        block = shifted - (height + slope * dist)
        lit = np.minimum(lit, np.clip(1 - block / (0.3 * dist + 1e-6), 0, 1))
    return lit.astype(F32)
