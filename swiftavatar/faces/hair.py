"""Scalp hair (eleven styles, optional bangs) and facial hair, with strand textures and
anisotropic (Kajiya-Kay) sheen."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.layout import Canvas, Layout
from swiftavatar.faces.shading import (F32, band_limited_strands, blur, coverage, dome,
                                       ellipse_sdf, kajiya_kay, noise1d, noise2d, normals,
                                       rgb255_linear, smin)
from swiftavatar.semantics import BROWS, EYES, HAIR, MOUTH, NOSE, SKIN


@dataclass(frozen=True)
class _Style:
    side: float        # volume beside the skull
    top: float         # volume above the skull
    length: float      # y of the lowest hair (head frame)
    hairline: float    # y of the hairline at the forehead centre
    margin: float      # how far the hair overlaps the face edge
    flare: float       # widening of the side curtains per unit of y
    texture: str       # straight / wavy / curly / stubble


_STYLES = {
    "buzz": _Style(0.008, 0.012, -0.03, -0.50, 0.0, 0.0, "stubble"),
    "short": _Style(0.035, 0.085, -0.01, -0.47, 0.005, 0.0, "straight"),
    "side_part": _Style(0.04, 0.11, -0.01, -0.46, 0.005, 0.0, "straight"),
    "curly": _Style(0.11, 0.15, 0.22, -0.45, 0.02, 0.05, "curly"),
    "afro": _Style(0.25, 0.26, 0.16, -0.46, 0.02, 0.0, "curly"),
    "bob": _Style(0.06, 0.09, 0.40, -0.45, 0.035, 0.06, "straight"),
    "long_straight": _Style(0.05, 0.07, 1.25, -0.46, 0.04, 0.10, "straight"),
    "long_wavy": _Style(0.09, 0.09, 1.15, -0.46, 0.04, 0.18, "wavy"),
    "ponytail": _Style(0.018, 0.035, -0.04, -0.50, 0.0, 0.0, "straight"),
    "bun": _Style(0.018, 0.035, -0.04, -0.50, 0.0, 0.0, "straight"),
}


def _around(rng: np.random.Generator, angle: np.ndarray, features: int) -> np.ndarray:
    """Smooth noise around a circle (`features` bumps per turn, seamless at +-pi)."""
    return noise1d(rng.standard_normal(features).astype(F32), angle * (features / (2 * np.pi)))


def _hair_sdf(x, y, lay: Layout, att: FaceAttributes, st: _Style, cv: Canvas,
              rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Signed distances of the visible hair, of its outer volume (and that volume before curls
    roughen its outline), and of the face area the hair leaves uncovered."""
    a = lay.a
    shift = 0.5 * lay.dx("hairline")
    xs = x - shift
    outer = ellipse_sdf(xs, y, 0.0, -0.20 - 0.5 * (st.top - st.side), a * 0.95 + st.side,
                        0.62 + 0.5 * (st.top + st.side))
    ang = np.arctan2(y + 0.2, xs)
    scallop = 0.01 * _around(rng, ang, 31)          # an uneven outline
    if st.texture == "curly":        # scalloped outline of curl clumps
        k = 9.0 if att.hair_style == "afro" else 13.0
        wob = _around(rng, ang, 19)
        scallop = scallop + 0.035 * np.abs(np.sin(ang * k + 0.8 * wob)) - 0.012
    if st.length > 0.1:              # side curtains down to the length
        half = a * 0.95 + st.side + st.flare * np.maximum(y - 0.05, 0)
        if st.texture == "wavy":
            half = half + 0.025 * np.sin(y * 22 + rng.uniform(0, 6.3))
        curtain = (np.abs(xs) - half).astype(F32)
        outer = smin(outer, np.maximum(curtain, -0.1 - y).astype(F32), 0.05)
    bottom = st.length + (0.025 * noise1d(rng.standard_normal(128).astype(F32), x * 25)
                          if st.length > 0.5 else 0.0)
    if att.hair_style == "bob":      # ends turn in: shorter towards the outside
        bottom = bottom - 0.05 * np.clip((np.abs(xs) - a) / 0.12, 0, 1) ** 2
    outer = smin(outer, ellipse_sdf(x, y, shift, -0.86, 0.16, 0.13), 0.05) \
        if att.hair_style == "bun" else outer
    cut = (y - bottom).astype(F32)
    smooth = -smin(-outer, -cut, 0.04)           # smooth intersection: rounded ends
    outer = (smooth + scallop).astype(F32)
    # the forehead/face the hair leaves uncovered, below a hairline
    edge = np.clip(np.abs(xs) / a, 0, 1.2)
    hl = st.hairline + (-0.04 - st.hairline) * edge ** 2.6
    if att.hair_style == "side_part":
        side = 1.0 if rng.random() < 0.5 else -1.0
        hl = hl + 0.07 * np.clip(0.5 - side * xs / a, 0, 1) ** 1.5
        cv.info["part_x"] = shift + side * 0.45 * a
    elif att.hair_style in ("short", "bob", "long_straight", "long_wavy") and rng.random() < 0.6:
        cv.info["part_x"] = shift + (0.0 if rng.random() < 0.5 else rng.uniform(-0.4, 0.4) * a)
    if att.bangs:
        ragged = 0.012 * noise1d(rng.standard_normal(64).astype(F32), x * 35)
        fringe = lay.brow_y - 0.035 - 0.09 * edge ** 2 + ragged
        hl = np.maximum(hl, np.where(edge < 0.95, fringe, hl))
    visible = np.maximum(cv.info["face_sdf"] + st.margin, (hl - y).astype(F32))
    sdf = np.maximum(outer, -visible)
    col_d = np.abs(x - 0.3 * lay.dx("chin")) - lay.neck_w      # hair falls behind the neck
    behind = np.maximum(col_d, lay.y_chin - 0.1 - y)
    sdf = np.maximum(sdf, -behind).astype(F32)
    return sdf, outer, smooth, visible


def _strands(kind: str, x, y, cx: float, cy: float, pix: float, n: int,
             rng: np.random.Generator, win=None) -> tuple[np.ndarray, np.ndarray]:
    """(texture ~ zero mean (h, w), unit strand direction in the image (h, w, 2)); x, y may
    be a window `win` of the n x n frame."""
    win = win or (slice(None), slice(None))
    dx, dy = x - cx, y - cy
    r = np.sqrt(dx * dx + dy * dy) + 1e-4
    if kind == "curly":      # clumps of coils at a fixed size in the head frame
        c1 = noise2d(rng, n, min(26, n / 2.5))[win]
        c2 = noise2d(rng, n, min(60, n / 2.5))[win] * (1.0 if n >= 150 else 0.5)
        tex = (0.65 * c1 + 0.45 * c2).astype(F32)
        t = np.stack([dx / r, dy / r], -1)
        return tex, t.astype(F32)
    phi = np.arctan2(dx, dy)                                    # angle around the crown
    if kind == "wavy":
        phi = phi + 0.035 * np.sin(r * 24 + rng.uniform(0, 6.3))
    nyq = r / (2 * pix)                                          # cycles per radian per pixel
    tex = band_limited_strands(rng, phi, (12.0, 40.0, 110.0, 260.0), (0.5, 0.45, 0.35, 0.3), nyq)
    tex *= 1 + 0.4 * noise1d(rng.standard_normal(512).astype(F32), r * 10 + phi * 4)
    if kind == "stubble":
        tex = 0.6 * tex + 0.8 * rng.standard_normal(x.shape).astype(F32) * min(1.0, 0.01 / pix)
    t = np.stack([dx / r, dy / r], -1)
    if kind == "wavy":
        w = 0.15 * np.cos(r * 24)
        t = np.stack([t[..., 0] + w * t[..., 1], t[..., 1] - w * t[..., 0]], -1)
        t = t / np.linalg.norm(t, axis=-1, keepdims=True)
    return tex.astype(F32), t.astype(F32)


def _shade_hair(cv: Canvas, albedo: np.ndarray, height: np.ndarray, tex: np.ndarray,
                tan2: np.ndarray, occ: np.ndarray, shine: float) -> np.ndarray:
    """Hair colour: Lambert/Kajiya-Kay diffuse, a white primary and tinted secondary sheen."""
    light, pix = cv.light, cv.grid.pix
    n = normals(height, pix)
    gy, gx = np.gradient(height, pix)
    # strands tilt in and out of the surface at random: the sheen breaks into streaks
    tz = tan2[..., 0] * gx + tan2[..., 1] * gy + 0.6 * tex
    t3 = np.stack([tan2[..., 0], tan2[..., 1], tz], -1)
    t3 = t3 / np.linalg.norm(t3, axis=-1, keepdims=True)
    kd, ks = kajiya_kay(t3, light, 80.0)
    shifted = t3 + 0.25 * n
    shifted = shifted / np.linalg.norm(shifted, axis=-1, keepdims=True)
    _, ks2 = kajiya_kay(shifted, light, 30.0)
    lam = np.clip(n @ light.direction, 0, None)
    diff = (0.5 * lam + 0.5 * kd * np.clip(lam * 3, 0, 1))[..., None] * light.color
    base = albedo * (diff + light.ambient_term(n, occ)) * occ[..., None]
    mod = np.clip(1 + 0.8 * tex, 0.2, 2.0)[..., None]
    sheen = shine * (ks[..., None] * light.color + 1.5 * ks2[..., None] * albedo * light.color)
    return (base * np.clip(1 + 0.6 * tex, 0.25, 1.9)[..., None] + sheen * mod * occ[..., None]
            ).astype(F32)


def hair_albedo(att: FaceAttributes) -> np.ndarray:
    """(3,) linear albedo whose rendered average matches the named appearance."""
    lin = rgb255_linear(att.hair_rgb)
    grey = float(lin @ np.array([0.2126, 0.7152, 0.0722], F32))
    lin = grey + (lin - grey) * 1.2       # the white sheen and fill desaturate the mass
    return np.clip(lin * 0.72, 0.002, 0.95).astype(F32)


def paint_hair(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    if att.hair_style == "bald":
        return
    st = _STYLES[att.hair_style]
    x, y, pix, n = cv.grid.x, cv.grid.y, cv.grid.pix, cv.grid.size
    sdf, outer, smooth, visible = _hair_sdf(x, y, lay, att, st, cv, rng)
    region = coverage(sdf, pix)
    crown = (cv.info.get("part_x", 0.5 * lay.dx("hairline")), -1.05)
    tex, tan2 = _strands(st.texture, x, y, crown[0], crown[1], pix, n, rng)
    vol = st.side + st.top
    curly = st.texture == "curly"
    height = dome(smooth, 0.3 + vol) + (0.013 if curly else 0.004) * tex
    occ = 0.6 + 0.4 * np.clip(visible / 0.06, 0, 1) * (0.5 + 0.5 * np.clip(-outer / 0.04, 0, 1))
    occ = occ.astype(F32)
    shine = 0.12 if att.hair_color in ("black", "dark_brown", "brown") else 0.07
    if st.texture == "stubble":
        shine *= 0.3
    if curly:
        shine *= 0.35
    if st.texture == "wavy":
        shine *= 0.6
    alb = hair_albedo(att)
    if "part_x" in cv.info:          # the parting: a thin darker line where the scalp shows
        px = cv.info["part_x"]
        part = (np.exp(-((x - px) / (0.006 + 0.5 * pix)) ** 2)
                * np.clip((st.hairline + 0.05 - y) / 0.1, 0, 1))
        alb = alb * (1 - 0.6 * part)[..., None]
    col = _shade_hair(cv, alb, height, tex, tan2, occ, shine)
    # soft shadow of the hair on the forehead and face, cast away from the light
    d = cv.light.direction
    off_x, off_y = int(round(-d[0] * 0.02 / pix)), int(round(-d[1] * 0.02 / pix + 0.012 / pix))
    cast = blur(np.roll(region, (off_y, off_x), axis=(0, 1)), 0.015 / pix)
    skin_like = np.isin(cv.mask, (SKIN, EYES, BROWS, NOSE))
    cv.rgb *= (1 - 0.45 * cast * (1 - region) * skin_like)[..., None]
    alpha = coverage(sdf, pix, soft=1.6)
    fringe = np.clip(-outer / 0.03, 0, 1)                    # wispy, see-through outer edge
    alpha = alpha * (fringe + (1 - fringe) * np.clip(0.7 + 0.5 * tex, 0, 1))
    if st.texture == "stubble":
        alpha = alpha * np.clip(0.75 + 0.3 * tex, 0, 1)
    cv.paint(alpha.astype(F32), col, HAIR, region=region)


def paint_hair_back(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Hair that hangs behind the neck and shoulders (a ponytail's tail)."""
    if att.hair_style != "ponytail":
        return
    pix, n = cv.grid.pix, cv.grid.size
    s = 1.0 if rng.random() < 0.5 else -1.0
    cx = s * (lay.neck_w + 0.04)
    got = cv.window(cx - 0.12, cx + 0.12, 0.0, 0.8)
    if got is None:
        return
    win, x, y = got
    half = 0.085 * np.clip(1.1 - (y - 0.1) / 0.7, 0.3, 1)
    sdf = np.maximum(np.abs(x - cx - 0.04 * s * (y - 0.1)) - half,
                     np.maximum(0.05 - y, y - 0.72)).astype(F32)
    tex, tan2 = _strands("straight", x, y, cx, -0.2, pix, n, rng, win)
    col = _shade_hair(cv, hair_albedo(att), dome(sdf, 0.05), tex, tan2,
                      np.full(x.shape, 0.7, F32), 0.2)
    cv.paint(coverage(sdf, pix), col, HAIR, win=win)


def _facial_hair_sdf(x, y, lay: Layout, att: FaceAttributes, face: np.ndarray) -> np.ndarray:
    mx, mw = lay.dx("mouth"), lay.mouth_w
    moustache = np.maximum(ellipse_sdf(x, y, mx, lay.mouth_y - lay.lip_up - 0.018, mw + 0.02, 0.03),
                           lay.nose_y + 0.012 - y).astype(F32)
    chin_y = (lay.mouth_y + lay.y_chin) / 2 + 0.02
    chin = ellipse_sdf(x, y, lay.dx("chin"), chin_y, mw * 0.7,
                       (lay.y_chin - lay.mouth_y) / 2 + 0.01)
    if att.facial_hair == "moustache":
        return moustache
    if att.facial_hair == "goatee":
        return smin(moustache, chin, 0.03)
    # stubble and beard: the whole lower face from the sideburns down (beard adds bulk)
    xs = np.abs(x - mx) / lay.a
    top = lay.mouth_y - 0.06 - (lay.mouth_y + 0.08) * np.clip(xs - 0.25, 0, 1) ** 1.2 / 0.75
    bulk = 0.05 if att.facial_hair == "full_beard" else 0.0
    grow = bulk * np.clip((y - lay.mouth_y) / 0.2, 0, 1)
    area = np.maximum(face - grow, top - y).astype(F32)
    return smin(area, moustache, 0.02)


def paint_facial_hair(cv: Canvas, lay: Layout, att: FaceAttributes,
                      rng: np.random.Generator) -> None:
    """Facial hair is labelled skin, as in CelebAMask-HQ; lips stay uncovered."""
    if att.facial_hair == "none":
        return
    pix, n = cv.grid.pix, cv.grid.size
    got = cv.window(-lay.a - 0.1, lay.a + 0.1, -0.25, lay.y_chin + 0.12)
    if got is None:
        return
    win, x, y = got
    sdf = _facial_hair_sdf(x, y, lay, att, cv.info["face_sdf"][win])
    mouth = cv.mask[win] == MOUTH
    full = att.facial_hair == "full_beard"
    tex, tan2 = _strands("curly" if full else "straight", x, y,
                         lay.dx("tip"), lay.nose_y - 0.25, pix, n, rng, win)
    alb = hair_albedo(att) * (0.8 if att.hair_color in ("blonde", "platinum") else 1.0)
    irr = cv.info["irradiance"][win]
    col = alb * irr * np.clip(1 + 0.5 * tex, 0.3, 1.8)[..., None]
    soft = 3.0 if att.facial_hair == "stubble" else 1.8
    strength = {"stubble": 0.45, "moustache": 0.9, "goatee": 0.9,
                "full_beard": 0.95}[att.facial_hair]
    alpha = coverage(sdf, pix, soft) * np.clip(strength + 0.25 * tex, 0, 1)
    if att.facial_hair == "stubble":
        alpha = alpha * np.clip(0.6 + 0.6 * rng.standard_normal(x.shape) * min(1, 0.01 / pix), 0, 1)
    alpha = alpha * (1 - 0.85 * mouth)
    region = coverage(sdf, pix) * (1 - mouth) if full else None
    cv.paint(alpha.astype(F32), col, SKIN if region is not None else None, region=region, win=win)
