"""Glasses (clear frames or sunglasses), earrings and a knitted beanie."""
from __future__ import annotations

import numpy as np

from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.layout import Canvas, Layout
from swiftavatar.faces.shading import (F32, band_limited_strands, blur, coverage, dome,
                                       ellipse_sdf, noise2d, normals, rgb255_linear, shade)
from swiftavatar.semantics import EARRING, EYEGLASSES, HAT, SKIN

_FRAME_COLOURS = {"black": (22, 20, 20), "brown": (70, 42, 28), "tortoise": (110, 66, 34),
                  "gold": (196, 160, 90), "silver": (190, 192, 196)}
_SUN_TINTS = [(20, 20, 22), (40, 30, 22), (24, 36, 30), (30, 44, 70)]


def _superellipse(x, y, cx, cy, hw, hh, p) -> np.ndarray:
    u, v = np.abs(x - cx) / hw, np.abs(y - cy) / hh
    return (((u ** p + v ** p) ** (1 / p)) - 1.0) * min(hw, hh)


def paint_glasses(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    if att.glasses == "none":
        return
    pix, light = cv.grid.pix, cv.light
    kind = att.glasses
    sun = kind == "sunglasses"
    metal = kind == "round" and rng.random() < 0.5
    names = ("gold", "silver") if metal else ("black", "black", "brown", "tortoise")
    colour = names[int(rng.integers(len(names)))]
    frame_alb = rgb255_linear(_FRAME_COLOURS[colour])
    t = rng.uniform(0.004, 0.007) if metal else rng.uniform(0.008, 0.014)
    hw = {"round": 1.25, "rectangular": 1.5, "browline": 1.45, "sunglasses": 1.6}[kind]
    hw = min(lay.eye_w * hw + 0.025, lay.eye_dx - 0.035)
    hh = hw * {"round": 0.95, "rectangular": 0.7, "browline": 0.78, "sunglasses": 0.88}[kind]
    p = {"round": 2.0, "rectangular": 4.5, "browline": 3.2, "sunglasses": 2.4}[kind]
    cy = lay.eye_y + (0.02 if sun else 0.008)
    gx = lay.dx("glasses")
    got = cv.window(gx - lay.a - 0.08, gx + lay.a + 0.08, cy - hh - 0.08, cy + 1.3 * hh + 0.08)
    if got is None:
        return
    win, x, y = got
    lens_d, frame_d = [], []
    for s in (-1, 1):
        w = hw * lay.squash(s)
        cx = s * lay.eye_dx + gx
        yy = y - (0.25 * hh * np.clip(s * (x - cx) / w, 0, 1) * (y > cy) if sun else 0)  # teardrop
        d = _superellipse(x, yy, cx, cy, w, hh, p).astype(F32)
        vtop = np.clip((cy - y) / hh, 0, 1)
        te = t + (0.022 - t) * vtop ** 1.5 if kind == "browline" else t
        lens_d.append(d)
        frame_d.append(np.abs(d) - te / 2)
        # temple arm from the outer edge back to the ear
        ty = cy - 0.3 * hh
        arm = np.maximum(np.abs(y - ty) - 0.6 * t, np.maximum(w * 0.9 - s * (x - cx),
                                                              np.abs(x) - lay.a - 0.01))
        frame_d.append(arm.astype(F32))
    bridge_y = cy - 0.3 * hh - 0.01 * np.cos((x - gx) / (lay.eye_dx - hw + 1e-3))
    bridge = np.maximum(np.abs(y - bridge_y) - 0.55 * t, np.abs(x - gx) - (lay.eye_dx - hw + t))
    frame_d.append(bridge.astype(F32))
    if sun:
        frame_d.append(np.maximum(np.abs(y - (cy - hh * 0.95)) - 0.4 * t,
                                  np.abs(x - gx) - lay.eye_dx).astype(F32))
    lens = np.minimum(*lens_d)
    frame = np.min(np.stack(frame_d), 0)
    lens_cov, frame_cov = coverage(lens, pix), coverage(frame, pix)
    # the frame's shadow on the skin
    d = light.direction
    off = (int(round(-d[1] * 0.02 / pix)) + 1, int(round(-d[0] * 0.02 / pix)))
    sh = blur(np.roll(frame_cov, off, axis=(0, 1)), 0.006 / pix)
    cv.rgb[win] *= (1 - 0.35 * sh * (cv.mask[win] == SKIN) * (1 - lens_cov))[..., None]
    # lenses: tint the face behind and add a soft reflection of the light and the room
    sweep = np.clip(0.5 + 0.9 * ((x - gx) * 0.6 - (y - cy) / hh * 0.5), 0, 1)
    refl = (0.02 + 0.07 * sweep ** 3)[..., None] * (light.color + light.sky)
    if sun:
        tint = rgb255_linear(_SUN_TINTS[int(rng.integers(len(_SUN_TINTS)))])
        lens_col = cv.rgb[win] * 0.04 + tint * 0.3 + refl * 0.7
    else:
        rim = np.clip(1 + lens / 0.015, 0, 1)[..., None]
        lens_col = cv.rgb[win] * (0.93 - 0.12 * rim) + refl
    cv.paint(lens_cov, lens_col.astype(F32), EYEGLASSES, win=win)
    alb = np.broadcast_to(frame_alb, x.shape + (3,))
    if colour == "tortoise":   # mottled amber and dark brown
        n = cv.grid.size
        mottle = np.clip(1 + 0.8 * noise2d(rng, n, max(8, n // 5))[win], 0.2, 2.0)
        alb = frame_alb * mottle[..., None]
    h = dome(frame, 0.5 * t + 0.004)
    col = shade(alb, normals(h, pix), light,
                spec=0.9 if metal else 0.35, shininess=60.0 if metal else 40.0, occlusion=1.0)
    cv.paint(frame_cov, col, EYEGLASSES, win=win)


def paint_earrings(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Studs or hoops at the ear lobes (only faces whose ears show get them)."""
    if att.earrings == "none":
        return
    pix = cv.grid.pix
    metal = rgb255_linear(_FRAME_COLOURS["gold" if rng.random() < 0.6 else "silver"])
    hoop = att.earrings == "hoops"
    sizes = rng.uniform(0.022, 0.035) if hoop else rng.uniform(0.009, 0.014)
    for k, (ex, ey) in enumerate(cv.info.get("ear_centres", [])):
        s = -1 if k == 0 else 1
        lx, ly = ex + s * 0.012, ey + 0.105
        got = cv.window(lx - 0.05, lx + 0.05, ly - 0.03, ly + 0.09)
        if got is None:
            continue
        win, x, y = got
        if hoop:
            r = sizes
            d = np.abs(np.sqrt((x - lx) ** 2 + (y - ly - r) ** 2) - r) - 0.0045
        else:
            d = np.sqrt((x - lx) ** 2 + (y - ly) ** 2) - sizes
        d = d.astype(F32)
        col = shade(np.broadcast_to(metal, x.shape + (3,)), normals(dome(d, 0.01), pix), cv.light,
                    spec=1.2, shininess=50.0)
        cv.paint(coverage(d, pix), col, EARRING, win=win)


def paint_beanie(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """A knitted hat: ribbed cuff, dome crown, fuzzy yarn texture."""
    if att.headwear != "beanie":
        return
    x, y, pix, n = cv.grid.x, cv.grid.y, cv.grid.pix, cv.grid.size
    shift = 0.5 * lay.dx("hairline")
    brim = lay.brow_y - rng.uniform(0.08, 0.16)
    crown = ellipse_sdf(x - shift, y, 0.0, -0.26, lay.a * 0.95 + 0.06, 0.66)
    sdf = np.maximum(crown, y - brim - 0.012 * (x / lay.a) ** 2).astype(F32)
    palette = [(30, 30, 34), (150, 30, 36), (40, 60, 100), (200, 196, 186), (90, 100, 70),
               (200, 140, 50)]
    alb = rgb255_linear(palette[int(rng.integers(len(palette)))])
    cuff = (y > brim - 0.09).astype(F32)
    ribs = band_limited_strands(rng, x, (30.0,), (1.0,), 1 / (2 * pix))
    knit = 1 + 0.18 * ribs * (0.5 + cuff) + 0.08 * noise2d(rng, n, max(8, n // 3))
    h = dome(sdf, 0.3) + 0.015 * cuff * np.clip((y - brim + 0.09) / 0.02, 0, 1) + 0.004 * ribs
    col = shade(alb * knit[..., None], normals(h, pix), cv.light, wrap=(0.2, 0.2, 0.2),
                spec=0.02, shininess=6.0, occlusion=0.9)
    fuzz = np.clip(-sdf / 0.015, 0, 1)
    alpha = coverage(sdf, pix, 1.5) * (fuzz + (1 - fuzz) * np.clip(0.8 + 0.4 * ribs, 0, 1))
    cv.paint(alpha.astype(F32), col, HAT, region=coverage(sdf, pix))
