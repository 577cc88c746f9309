"""The head: face outline, its 3-D relief (height field) and skin, the ears and the neck."""
from __future__ import annotations

import numpy as np

from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.layout import Canvas, Layout
from swiftavatar.faces.scene import body_sdf
from swiftavatar.faces.shading import (F32, blur, coverage, dome, ellipse_sdf, heightfield_shadow,
                                       noise2d, normals, rgb255_linear, shade, smin)
from swiftavatar.semantics import EARS, NECK, SKIN

SKIN_WRAP = (0.42, 0.24, 0.18)   # red light wraps furthest round the terminator (subsurface)


def _gauss(x, y, cx, cy, sx, sy) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)).astype(F32)


def _smooth(t) -> np.ndarray:
    t = np.clip(t, 0, 1)
    return t * t * (3 - 2 * t)


def face_sdf(x: np.ndarray, y: np.ndarray, lay: Layout) -> np.ndarray:
    """Signed distance (approx.) to the face outline: skull, cheeks, jaw and chin blended."""
    a = lay.a
    cranium = ellipse_sdf(x, y, 0.0, -0.20, a * 0.95, 0.62)
    cheeks = ellipse_sdf(x, y, 0.0, -0.07, a, 0.40)
    jaw_cy = 0.13 + 0.35 * (lay.y_chin - 0.45)
    jaw = ellipse_sdf(x, y, 0.0, jaw_cy, lay.a_jaw, lay.y_chin - jaw_cy - 0.02)
    chin_w = 0.4 * lay.a_jaw + 0.03
    chin = ellipse_sdf(x, y, 0.0, lay.y_chin - 0.07, chin_w, 0.07)
    d = smin(cranium, cheeks, 0.16)
    d = smin(d, jaw, 0.10)
    return smin(d, chin, 0.06)


def face_base(x: np.ndarray, y: np.ndarray, lay: Layout) -> np.ndarray:
    """(H, W) the face's base surface: per head-frame row a rounded cylinder as wide as the
    outline there (a face is flat-fronted top to bottom and curves round to the ears)."""
    ys = np.linspace(-0.9, lay.y_chin + 0.1, 170, dtype=F32)
    xs = np.linspace(-0.75, 0.75, 301, dtype=F32)
    step = float(xs[1] - xs[0])
    inside = coverage(face_sdf(xs[None, :], ys[:, None], lay), step)      # (160, 301) soft
    cnt = inside.sum(1)
    half = np.convolve(np.pad(cnt * step / 2, 2, mode="edge"), np.ones(5) / 5, "valid")
    mid = np.where(cnt > 0, (inside * xs[None, :]).sum(1) / np.maximum(cnt, 1e-6), 0.0)
    w = np.interp(y, ys, half).astype(F32) + 1e-4
    c = np.interp(y, ys, mid).astype(F32)
    e = np.clip(w - np.abs(x - c), 0, None)
    return (0.85 * w * np.sin(0.5 * np.pi * np.clip(e / w, 0, 1))).astype(F32)


def face_height(x: np.ndarray, y: np.ndarray, base: np.ndarray, lay: Layout,
                att: FaceAttributes) -> np.ndarray:
    """(H, W) relief towards the camera: the base plus nose, brows, sockets, cheeks, lips."""
    g = _gauss
    h = base.copy()
    ns = 0.75 + 0.5 * att.nose_size
    bx, tx, ex, mx = lay.dx("bridge"), lay.dx("tip"), lay.dx("eye"), lay.dx("mouth")
    t = np.clip((y - lay.eye_y) / (lay.nose_y - lay.eye_y), 0, 1)
    ridge_x = bx + (tx - bx) * t
    ridge = np.exp(-0.5 * ((x - ridge_x) / (0.03 * ns + 0.02 * t)) ** 2) * (0.35 + 0.65 * t)
    ridge *= _smooth((y - lay.eye_y + 0.07) / 0.07) * _smooth((lay.nose_y + 0.01 - y) / 0.04)
    h = h + 0.05 * ns * ridge
    h += 0.03 * ns * g(x, y, tx, lay.nose_y - 0.03, 0.04 * ns, 0.035)                # tip
    for s in (-1, 1):
        h += 0.018 * g(x, y, tx + s * lay.nose_w * 0.75, lay.nose_y - 0.018, 0.028, 0.022)  # alae
        h -= 0.028 * g(x, y, ex + s * lay.eye_dx, lay.eye_y, 0.085, 0.055)      # socket
        h += 0.02 * g(x, y, ex + s * (lay.eye_dx + 0.02), lay.brow_y + 0.01, 0.1, 0.04)  # brow
        h += (0.02 + 0.02 * att.smile) * g(x, y, s * (lay.eye_dx + 0.06) + lay.dx("cheek"),
                                           0.06 + 0.03 * (1 - att.smile), 0.09, 0.07)  # cheek
        # nasolabial fold: from the nose wing down and out to beside the mouth corner
        y0, y1 = lay.nose_y - 0.03, lay.mouth_y + 0.02
        t = (y - y0) / (y1 - y0)
        fx = mx + s * (lay.nose_w + 0.01 + (lay.mouth_w + 0.025 - lay.nose_w) * np.clip(t, 0, 1))
        fold = np.exp(-0.5 * ((x - fx) / 0.014) ** 2) * np.sin(np.pi * np.clip(t, 0, 1))
        h -= (0.003 + 0.01 * att.smile) * fold
    h += 0.011 * g(x, y, mx, lay.mouth_y - lay.lip_up * 0.5, lay.mouth_w * 0.8, 1.3 * lay.lip_up)
    h += 0.013 * g(x, y, mx, lay.mouth_y + lay.lip_lo * 0.55, lay.mouth_w * 0.7, 1.3 * lay.lip_lo)
    h -= 0.005 * g(x, y, mx, lay.mouth_y + lay.lip_lo + 0.03, lay.mouth_w * 0.6, 0.025)  # lip fold
    h += 0.018 * g(x, y, lay.dx("chin"), lay.y_chin - 0.07, 0.08, 0.05)               # chin
    h -= 0.005 * g(x, y, mx, (lay.nose_y + lay.mouth_y) / 2, 0.014, 0.025)               # philtrum
    return h.astype(F32)


def _skin_albedo(x, y, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) linear skin colour with blotches, flush on cheeks/nose, pores."""
    n = x.shape[0]
    base = rgb255_linear(att.skin_rgb)
    blotch = noise2d(rng, n, 7)[..., None]
    mid = noise2d(rng, n, max(8, n // 6))[..., None]
    pores = rng.standard_normal((n, n, 1)).astype(F32)
    g = _gauss
    red = 0.5 * g(x, y, lay.dx("tip"), lay.nose_y - 0.03, 0.05, 0.04)
    for s in (-1, 1):
        red += 0.55 * g(x, y, s * (lay.eye_dx + 0.05) + lay.dx("cheek"), 0.08, 0.09, 0.07)
        red -= 0.35 * g(x, y, s * lay.eye_dx + lay.dx("eye"), lay.eye_y + 0.06, 0.07, 0.03)
    flush = np.array([0.10, -0.12, -0.10], F32)
    alb = base * (1 + 0.07 * blotch + 0.035 * mid + 0.03 * pores) * (1 + flush * red[..., None])
    return np.clip(alb, 0, 1).astype(F32)


def paint_ears(cv: Canvas, lay: Layout, att: FaceAttributes) -> None:
    pix = cv.grid.pix
    alb = rgb255_linear(att.skin_rgb) * np.array([1.0, 0.9, 0.88], F32)
    for s in (-1, 1):
        cx = s * lay.a * 0.95 + lay.dx("ear")
        cx += s * 0.04 * (1 - lay.squash(s, "eye"))
        cv.info.setdefault("ear_centres", []).append((cx, lay.ear_y))
        got = cv.window(cx - 0.07, cx + 0.07, lay.ear_y - 0.13, lay.ear_y + 0.13)
        if got is None:
            continue
        win, x, y = got
        d = ellipse_sdf(x, y, cx, lay.ear_y, 0.052, 0.11)
        h = dome(d, 0.05) - 0.025 * _gauss(x, y, cx - s * 0.01, lay.ear_y + 0.01, 0.022, 0.05)
        h = h - s * 0.5 * (x - cx)                        # the ear faces outwards
        occ = 0.5 + 0.5 * np.clip(face_sdf(x, y, lay) / 0.04, 0, 1)   # crease at the head
        col = shade(np.broadcast_to(alb, x.shape + (3,)), normals(h, pix), cv.light,
                    wrap=SKIN_WRAP, spec=0.04, shininess=20.0, occlusion=occ * 0.8,
                    shadow=occ)
        cv.paint(coverage(d, pix), col, EARS, win=win)


def paint_neck(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Neck column flaring into the shoulders; sits in the jaw's shadow."""
    x, y, pix, light = cv.grid.x, cv.grid.y, cv.grid.pix, cv.light
    cx = 0.3 * lay.dx("chin")
    width = lay.neck_w + 0.9 * np.maximum(y - 0.62, 0) ** 2
    d = np.maximum(np.abs(x - cx) - width, -0.1 - y)
    d = np.minimum(d, body_sdf(x, y, lay)).astype(F32)     # chest skin shows in the neckline
    h = dome(np.abs(x - cx) - width, 0.25)
    alb = rgb255_linear(att.skin_rgb) * np.array([0.97, 0.93, 0.92], F32)
    alb = alb * (1 + 0.04 * noise2d(rng, x.shape[0], 6))[..., None]
    reach = 0.10 + 0.18 * max(0.0, -float(light.direction[1]))
    shadow = np.clip((y - lay.y_chin + 0.04) / reach, 0, 1) ** 0.8
    occ = 0.55 + 0.45 * shadow
    col = shade(alb, normals(h, pix), light, wrap=SKIN_WRAP, occlusion=occ, shadow=shadow)
    cv.paint(coverage(d, pix), col, NECK)
    cv.info["neck_sdf"] = d


def paint_face(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Face skin lit from its relief; stores irradiance and relief for the later parts."""
    x, y, pix, light = cv.grid.x, cv.grid.y, cv.grid.pix, cv.light
    sdf = face_sdf(x, y, lay)
    base = face_base(x, y, lay)
    h = face_height(x, y, base, lay, att)
    n = normals(h, pix)
    # cast shadows and occlusion come from the relief on top of the (convex) base only
    detail = h - base
    sh = heightfield_shadow(detail, light, pix, steps=4, reach=0.10)
    sh = blur(sh, 0.015 / pix)
    occ = np.clip(1.0 - 4.0 * (blur(detail, 0.04 / pix) - detail), 0.5, 1.0)
    alb = _skin_albedo(x, y, lay, att, rng)
    tzone = (_gauss(x, y, 0.0, -0.45, 0.2, 0.12) + _gauss(x, y, lay.dx("tip"), 0.02, 0.05, 0.12)
             + 0.6 * _gauss(x, y, lay.dx("chin"), lay.y_chin - 0.08, 0.08, 0.05))
    oil = float(rng.uniform(0.03, 0.12))
    col = shade(alb, n, light, wrap=SKIN_WRAP, spec=oil * (0.4 + tzone), shininess=22.0,
                occlusion=occ, shadow=sh)
    cov = coverage(sdf, pix)
    cv.paint(cov, col, SKIN)
    # what features painted on the face need: irradiance (lit / albedo) and the relief
    ndl = n @ light.direction
    w = np.asarray(SKIN_WRAP, F32)
    direct = np.clip((ndl[..., None] + w) / (1 + w), 0, None) * light.color * sh[..., None]
    cv.info.update(face_sdf=sdf, face_height=h, face_normals=n, face_shadow=sh, face_occ=occ,
                   irradiance=(direct + light.ambient_term(n, occ)).astype(F32), skin_albedo=alb)
