"""Eyes, brows, nose and mouth, painted onto the lit face skin (they take its irradiance, so
they sit in the same light and shadow)."""
from __future__ import annotations

import numpy as np

from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.layout import Canvas, Layout
from swiftavatar.faces.shading import (F32, coverage, ellipse_sdf, noise1d, noise2d,
                                       rgb255_linear, smin)
from swiftavatar.semantics import BROWS, EYES, MOUTH, NOSE


def _lit(cv: Canvas, albedo, win) -> np.ndarray:
    return (np.asarray(albedo, F32) * cv.info["irradiance"][win]).astype(F32)


def _soft_disc(x, y, cx, cy, r, pix, soft=1.0) -> np.ndarray:
    return coverage(np.sqrt((x - cx) ** 2 + (y - cy) ** 2) - r, pix, soft)


def paint_eyes(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Almond openings: shaded sclera, textured iris, pupil, lash line, corneal highlight."""
    pix, light = cv.grid.pix, cv.light
    iris_alb = rgb255_linear(att.eye_rgb)
    gaze = rng.uniform(-0.12, 0.12) + 0.25 * np.sin(lay.yaw)
    fib = rng.standard_normal(64).astype(F32)
    for s in (-1, 1):
        w = lay.eye_w * lay.squash(s)
        cx = s * lay.eye_dx + lay.dx("eye")
        got = cv.window(cx - 1.3 * w, cx + 1.3 * w, lay.eye_y - 3 * lay.eye_h,
                        lay.eye_y + 2 * lay.eye_h)
        if got is None:
            continue
        win, x, y = got
        irr = cv.info["irradiance"][win]
        u = (x - cx) / w
        v = (y - lay.eye_y) / lay.eye_h
        uu = np.clip(1 - u * u, 0, 1)
        top = -(uu ** 0.7) - 0.18 * s * u            # outer corner sits a little higher
        bot = 0.75 * uu ** 0.9 - 0.1 * s * u
        g = np.maximum(np.maximum(top - v, v - bot) * lay.eye_h, (np.abs(u) - 1) * w)
        cov = coverage(g.astype(F32), pix)
        # eyeball: off-white, pinker at the corners, shadowed by the upper lid
        t = np.clip((v - top) / np.maximum(bot - top, 1e-3), 0, 1)
        sclera = rgb255_linear((196, 186, 178)) * (1 - 0.3 * u[..., None] ** 2)
        sclera = sclera + (rgb255_linear((200, 130, 120)) - sclera) * (0.5 * u * u)[..., None] ** 2
        shade_ = (0.45 + 0.55 * np.clip(t * 1.6, 0, 1)) * (1 - 0.25 * u * u)
        col = sclera * shade_[..., None]
        # iris and pupil
        ix, iy, ri = cx + gaze * w, lay.eye_y + 0.1 * lay.eye_h, 0.5 * w
        r = np.sqrt((x - ix) ** 2 + (y - iy) ** 2) / ri
        ang = np.arctan2(y - iy, x - ix) * (32 / np.pi)
        fibres = 1 + 0.25 * noise1d(fib, ang) * np.clip(1 - r, 0, 1)
        collarette = 1 + 0.6 * np.exp(-((r - 0.5) / 0.15) ** 2)     # lighter ring round the pupil
        iris = iris_alb * (fibres * collarette)[..., None]
        iris = iris * np.clip(1.25 - 0.9 * np.clip(r - 0.6, 0, 1) / 0.4, 0.35, 1.2)[..., None]
        icov = coverage((r - 1) * ri, pix)
        col = col + (iris * shade_[..., None] - col) * icov[..., None]
        pcov = coverage((r - 0.36) * ri, pix)
        col = col + (np.array([0.01, 0.01, 0.012], F32) - col) * pcov[..., None]
        col = col * irr * 0.9
        # corneal reflection of the key light
        hx = ix + 0.45 * ri * float(light.direction[0])
        hy = iy + 0.45 * ri * float(light.direction[1]) - 0.15 * ri
        hl = _soft_disc(x, y, hx, hy, 0.17 * ri, pix, 1.2) * cov
        col = col + hl[..., None] * (0.8 * light.color)
        cv.paint(cov, col, EYES, win=win)
        # lash line and lid crease (skin pixels: lashes are not part of the eye class)
        d_up = (v - top) * lay.eye_h
        lash = np.exp(-((d_up + 0.004) / (0.006 + 0.3 * pix)) ** 2) * (uu ** 0.25)
        lash *= np.clip(1.2 - np.abs(u), 0, 1) * (0.8 + 0.2 * s * u)
        dark = np.array([0.02, 0.015, 0.012], F32) * irr
        cv.paint((0.7 * lash).astype(F32), dark, win=win)
        crease = np.exp(-((v - top * 1.9 + 0.2) / 0.35) ** 2) * uu
        cv.paint((0.18 * crease).astype(F32), cv.rgb[win] * 0.5, win=win)


def paint_brows(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Tapered arched bands of short hairs, feathered edges, hair-coloured (a little darker)."""
    pix = cv.grid.pix
    hair = np.asarray(att.hair_rgb, F32)
    brow_rgb = np.minimum(hair * 0.8, hair * 0 + 150) if hair.mean() > 90 else hair * 0.9
    alb = rgb255_linear(brow_rgb)
    tex_full = noise2d(rng, cv.grid.size, max(6, cv.grid.size // 3))
    arch = rng.uniform(0.008, 0.02)
    for s in (-1, 1):
        x_in = s * (lay.eye_dx - lay.eye_w * 0.95) + lay.dx("brow")
        x_out = s * (lay.eye_dx + lay.eye_w * (1.35 * lay.squash(s))) + lay.dx("brow")
        length = abs(x_out - x_in)
        got = cv.window(min(x_in, x_out) - 0.03, max(x_in, x_out) + 0.03, lay.brow_y - 0.09,
                        lay.brow_y + 0.06)
        if got is None:
            continue
        win, x, y = got
        tex = tex_full[win]
        t = (x - x_in) / (x_out - x_in)
        tc = np.clip(t, 0, 1)
        yc = (lay.brow_y - (att.brow_tilt - 0.5) * 0.05 * tc - arch * 4 * tc * (1 - tc) ** 0.6
              + 0.006 * (1 - tc))
        th = lay.brow_t * (1.1 - 0.65 * tc ** 1.5)
        g = np.maximum(np.abs(y - yc) - th, (np.abs(t - 0.5) - 0.5) * length).astype(F32)
        region = coverage(g, pix)
        alpha = coverage(g, pix, soft=2.5) * np.clip(0.8 + 0.25 * tex, 0.3, 1.0)
        alpha *= np.clip(1.15 - 0.4 * tc, 0, 1)
        cv.paint(alpha.astype(F32), _lit(cv, alb, win), BROWS, region=region, win=win)


def nose_sdf(x, y, lay: Layout) -> np.ndarray:
    """The nose label: bridge from eye level, widening to the nostrils, rounded at the base."""
    top, base = lay.eye_y + 0.02, lay.nose_y + 0.005
    t = np.clip((y - top) / (base - top), 0, 1)
    cx = lay.dx("bridge") + (lay.dx("tip") - lay.dx("bridge")) * t
    w = 0.03 + (lay.nose_w - 0.03) * t ** 2.2
    col = np.maximum(np.abs(x - cx) - w, np.maximum(top - y, y - base))
    tip = ellipse_sdf(x, y, lay.dx("tip"), lay.nose_y - 0.028, lay.nose_w, 0.034)
    return smin(col.astype(F32), tip, 0.02)


def paint_nose(cv: Canvas, lay: Layout, att: FaceAttributes) -> None:
    """The nose is relief (in the face height field) plus nostril shadows; here the label."""
    pix = cv.grid.pix
    tx = lay.dx("tip")
    lo = min(lay.dx("bridge"), tx) - lay.nose_w - 0.04
    hi = max(lay.dx("bridge"), tx) + lay.nose_w + 0.04
    got = cv.window(lo, hi, lay.eye_y, lay.nose_y + 0.03)
    if got is None:
        return
    win, x, y = got
    d = nose_sdf(x, y, lay)
    for s in (-1, 1):
        nd = ellipse_sdf(x, y, tx + s * 0.42 * lay.nose_w, lay.nose_y - 0.006,
                         0.28 * lay.nose_w, 0.010)
        cv.paint(0.65 * coverage(nd, pix, soft=2.0), cv.rgb[win] * 0.22, win=win)
    cv.paint(np.zeros_like(d), cv.rgb[win], NOSE, region=coverage(d, pix), win=win)


def paint_mouth(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Lips with a cupid's bow; corners lift with the smile; a broad smile shows teeth."""
    pix = cv.grid.pix
    mw, mx = lay.mouth_w, lay.dx("mouth")
    got = cv.window(mx - 1.15 * mw, mx + 1.15 * mw, lay.mouth_y - 0.09, lay.mouth_y + 0.11)
    if got is None:
        return
    win, x, y = got
    u = (x - mx) / mw
    uu = np.clip(1 - u * u, 0, 1)
    line = lay.mouth_y - (att.smile - 0.3) * 0.045 * (u * u - 0.3)
    gap = max(0.0, (att.smile - 0.72) / 0.28) * 0.045 * uu ** 0.7
    bow = 1 - 0.3 * np.exp(-(u / 0.12) ** 2) + 0.2 * np.exp(-((np.abs(u) - 0.28) / 0.15) ** 2)
    up_top = line - 0.35 * gap - lay.lip_up * uu ** 0.55 * bow
    lo_bot = line + 0.65 * gap + lay.lip_lo * uu ** 0.6
    g = np.maximum(np.maximum(up_top - y, y - lo_bot), (np.abs(u) - 1) * mw).astype(F32)
    cov = coverage(g, pix, soft=1.3)
    skin = rgb255_linear(att.skin_rgb)
    lip = skin * np.array([0.95, 0.48, 0.48], F32) * 0.82
    if rng.random() < 0.15:  # lipstick
        lip = rgb255_linear([(150, 30, 40), (180, 80, 90), (110, 30, 50)][int(rng.integers(3))])
    upper = (y < line)[..., None]
    alb = np.where(upper, lip * 0.78, lip)
    col = _lit(cv, alb, win)
    spec = np.exp(-(((y - (line + 0.6 * gap + lay.lip_lo * 0.45)) / (0.35 * lay.lip_lo)) ** 2
                    + (u / 0.5) ** 2))
    col = col + (0.12 * spec * max(0.0, float(cv.light.direction[2])))[..., None] * cv.light.color
    if att.smile > 0.72:      # open: teeth under the upper lip, dark below
        t_top, t_bot = line - 0.35 * gap, line + 0.65 * gap
        tt = np.clip((y - t_top) / np.maximum(t_bot - t_top, 1e-4), 0, 1)
        teeth = rgb255_linear((226, 218, 200)) * (1 - 0.35 * u * u)[..., None]
        inner = np.where((tt < 0.55)[..., None], teeth, rgb255_linear((70, 20, 24)))
        inner = _lit(cv, inner, win) * 0.85
        in_gap = coverage(np.maximum(t_top - y, y - t_bot).astype(F32), pix)
        col = col + (inner - col) * in_gap[..., None]
    crease = np.exp(-((y - line - 0.15 * gap) / (0.004 + 0.25 * pix)) ** 2) * uu ** 0.3
    col = col * (1 - (0.2 if att.smile > 0.72 else 0.55) * crease)[..., None]
    cv.paint(cov, col.astype(F32), MOUTH, win=win)
