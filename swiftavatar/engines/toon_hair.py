"""Hair styles (a back layer behind the head and a front layer over it) and facial hair.

A front layer is one polygon: the outer hair shell over the top of the skull, then the
hairline (fringe) back across the forehead; long styles add side curtains that frame the face.
Back layers (long hair, buns, ponytails, afros) are drawn behind the neck and shoulders.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swiftavatar import semantics as sem
from swiftavatar.engines.toon_canvas import (Clip, Op, Poly, Stroke, catmull_rom, ellipse, mirror,
                                             mix, outline_of, rgba, scale_about, shade)
from swiftavatar.engines.toon_face import EYE_LINE, LINE_W, Head

WHITE = (255, 255, 255)


@dataclass
class Hair:
    back: list[Op] = field(default_factory=list)
    front: list[Op] = field(default_factory=list)
    front_region: np.ndarray | None = None  # casts the shadow on the forehead
    covers_ears: bool = False
    top: float = 0.0  # how far the hair stands above the skull (hats sit on it)
    side: float = 0.0  # how far it stands off the side of the head


# ---- geometry helpers ------------------------------------------------------------------------
def _shell(h: Head, theta: np.ndarray, dx, dy, q: float = 1.0) -> np.ndarray:
    """Points on the skull ellipse grown by (dx, dy); theta in degrees, 0 = top, 90 = right.
    q < 1 flattens the top into a boxier outline."""
    t = np.radians(theta)
    c = np.cos(t)
    return np.stack([h.cx + (h.fw + dx) * np.sin(t),
                     h.cheek_y - (h.ry + dy) * np.sign(c) * np.abs(c) ** q], axis=1)


def _line(h: Head, ctrl, smooth: bool = True) -> np.ndarray:
    """A hairline through (x / half face width, y - eye line) control points."""
    c = np.asarray(ctrl, np.float64) * (h.fw, 1.0) + (h.cx, EYE_LINE)
    return catmull_rom(c, closed=False, samples=5) if smooth else c


def _wiggle(pts: np.ndarray, n: float, amp: float, wave: str = "scallop") -> np.ndarray:
    """Offset a polyline along its right-hand normal (outward for clockwise outlines) by a
    periodic profile: 'scallop' (curls), 'spike' (tufts) or 'sine' (waves)."""
    d = np.gradient(pts, axis=0)
    nrm = np.stack([d[:, 1], -d[:, 0]], axis=1)
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)]) / max(seg.sum(), 1e-9)
    if wave == "scallop":
        prof = np.abs(np.sin(np.pi * n * s))
    elif wave == "spike":
        prof = 1.0 - np.abs(2.0 * ((n * s) % 1.0) - 1.0)
    else:
        prof = np.sin(2.0 * np.pi * n * s)
    return pts + nrm * (amp * prof)[:, None]


def _dense(pts: np.ndarray, n: int) -> np.ndarray:
    """Resample a polyline to n points evenly along its length."""
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)


def _face_half_width(h: Head, y: np.ndarray) -> np.ndarray:
    k = int(np.argmax(h.face[:, 1]))
    fy = np.maximum.accumulate(h.face[:k + 1, 1])
    return np.interp(y, fy, h.face[:k + 1, 0] - h.cx, right=0.0)


# ---- styles ----------------------------------------------------------------------------------
_SIDE = [(0.97, 0.03), (0.92, -0.05)]  # temple and sideburn, right side


def _short_line(*mid) -> list[tuple[float, float]]:
    """A hairline from the right temple across `mid` to the left temple."""
    return _SIDE + list(mid) + [(-x, y) for x, y in reversed(_SIDE)]


_CAPS = {  # style: (side growth, top growth, hairline control points, smooth)
    "buzz": (0.007, 0.01, _short_line((0.7, -0.115), (0.0, -0.135), (-0.7, -0.115)), True),
    "short": (0.022, 0.035, _short_line((0.75, -0.1), (0.4, -0.105), (0.1, -0.092),
                                        (-0.25, -0.11), (-0.65, -0.12)), True),
    "side_part": (0.026, 0.04, _short_line((0.7, -0.075), (0.3, -0.1), (-0.1, -0.13),
                                           (-0.45, -0.158), (-0.8, -0.11)), True),
    "quiff": (0.02, 0.03, _short_line((0.7, -0.125), (0.0, -0.152), (-0.7, -0.125)), True),
    "pixie": (0.018, 0.03, _short_line((0.78, -0.07), (0.62, -0.1), (0.45, -0.058), (0.3, -0.1),
                                       (0.12, -0.062), (-0.05, -0.104), (-0.25, -0.072),
                                       (-0.45, -0.114), (-0.7, -0.11)), False),
    "ponytail": (0.012, 0.02, _short_line((0.6, -0.14), (0.0, -0.156), (-0.6, -0.14)), True),
    "afro": (0.03, 0.05, _short_line((0.6, -0.125), (0.0, -0.138), (-0.6, -0.125)), True),
}
_CAPS["bun"] = _CAPS["ponytail"]

_MID_PART = [(0.92, -0.02), (0.6, -0.09), (0.25, -0.125), (0.03, -0.152), (-0.03, -0.152),
             (-0.25, -0.125), (-0.6, -0.09), (-0.92, -0.02)]
_SIDE_SWEEP = [(0.92, -0.02), (0.7, -0.06), (0.35, -0.09), (0.0, -0.115), (-0.4, -0.14),
               (-0.75, -0.11), (-0.92, -0.03)]
_LONG = {  # style: (side growth, top growth, bottom y, hairline, wave, curls)
    "bangs": (0.035, 0.045, 0.8, [(0.92, -0.03), (0.7, -0.072), (0.35, -0.076), (0.0, -0.078),
                                  (-0.35, -0.076), (-0.7, -0.072), (-0.92, -0.03)], 0.0, 0),
    "bob": (0.04, 0.045, None, _SIDE_SWEEP, 0.0, 0),
    "shoulder_length": (0.03, 0.04, 0.84, _MID_PART, 0.0, 0),
    "long_straight": (0.03, 0.04, 0.96, _MID_PART, 0.0, 0),
    "long_wavy": (0.04, 0.045, 0.95, _SIDE_SWEEP, 0.012, 0),
    "curly": (0.06, 0.07, 0.8, [(0.93, -0.02), (0.6, -0.085), (0.0, -0.105), (-0.6, -0.085),
                                (-0.93, -0.02)], 0.0, 16),
}


def hair_ops(h: Head, style: str, rgb: tuple[int, int, int], volume: float,
             capped: bool) -> Hair:
    """The hair of `style`; `capped` (a hat covers the crown) drops buns, crests and quiffs."""
    if style == "bald":
        return Hair(front=[Poly(ellipse(h.cx - 0.35 * h.fw, h.top + 0.05, 0.04, 0.02, 16, rot=-25),
                                rgba(WHITE, 60))])
    line, back_rgb = outline_of(rgb), shade(rgb, 0.86)
    if style == "mohawk":
        return _mohawk(h, rgb, line, volume, capped)
    if style in _LONG:
        return _long(h, style, rgb, back_rgb, line, volume)
    sx, ty, ctrl, smooth = _CAPS[style]
    sx, ty = sx * volume, ty * volume
    th = np.linspace(-86.0, 86.0, 49)
    dy = np.full_like(th, ty)
    q = 1.0
    if style == "quiff" and not capped:
        dy, q = dy + 0.04 * volume, 0.55
    if style == "side_part":
        dy = dy + 0.012 * np.exp(-((th - 30.0) / 40.0) ** 2)
    outer = _shell(h, th, sx, dy, q)
    if style == "short":
        outer = _wiggle(outer, 9, 0.012 * volume, "spike")
    hairline = _line(h, ctrl, smooth)
    if style == "afro":
        hairline = _wiggle(hairline, 7, 0.008)
    front = np.concatenate([outer, hairline])
    hair = Hair(front_region=front, top=float(dy.max()), side=sx)
    if style == "afro":  # one big curly mass behind, the hairline in front
        big = _wiggle(ellipse(h.cx, h.cheek_y - 0.06, h.fw + 0.1 * volume,
                              h.ry + 0.05 + 0.04 * volume, 72, 160.0, 380.0), 18, 0.014)
        big = np.concatenate([big, [[h.cx + 0.9 * h.fw, h.jaw_y], [h.cx - 0.9 * h.fw, h.jaw_y]]])
        hair.back = [Poly(big, rgb, sem.HAIR, line, LINE_W)]
        hair.front = [Poly(front, rgb, sem.HAIR), Stroke(hairline, line, LINE_W)]
        hair.covers_ears, hair.top, hair.side = True, 0.1 + 0.04 * volume, 0.1 * volume
        return hair
    hair.front = [Poly(front, rgb, sem.HAIR, line, LINE_W), _highlight(h, rgb, sx, ty)]
    if style == "side_part":
        part = _line(h, [(-0.45, -0.158), (-0.5, -0.2), (-0.52, -0.24)])
        hair.front.append(Stroke(part, line, 0.004))
    if style in ("ponytail", "bun"):
        hair.front.append(_strands(h, front, rgb, sx, ty))
    if style == "ponytail":
        x0 = h.cx + h.fw
        tail = catmull_rom([[x0 - 0.08, h.top + 0.04], [x0 + 0.05, h.top + 0.12],
                            [x0 + 0.075, EYE_LINE + 0.12], [x0 + 0.06, 0.8], [x0 + 0.035, 0.86],
                            [x0 + 0.02, 0.78], [x0 + 0.01, EYE_LINE + 0.1],
                            [x0 - 0.03, h.top + 0.1]])
        hair.back = [Poly(tail, back_rgb, sem.HAIR, line, LINE_W)]
    if style == "bun" and not capped:
        bun = ellipse(h.cx, h.top - 0.03 * volume, 0.07 * volume, 0.06 * volume, 32)
        hair.back = [Poly(bun, rgb, sem.HAIR, line, LINE_W),
                     Stroke(ellipse(h.cx, h.top - 0.03 * volume, 0.04 * volume, 0.032 * volume, 16,
                                    200.0, 340.0), shade(rgb, 0.75), 0.004)]
        hair.top = 0.03 * volume + 0.06 * volume
    return hair


def _highlight(h: Head, rgb, sx: float, ty: float) -> Poly:
    """A light crescent on the upper left of the hair; it lies inside every style's front
    layer (under the outer shell, above the hairline), so it needs no clipping."""
    th = np.linspace(-55.0, -12.0, 10)
    band = np.concatenate([_shell(h, th, sx - 0.016, ty - 0.018),
                           _shell(h, th[::-1], sx - 0.03, ty - 0.034)])
    return Poly(band, mix(rgb, WHITE, 0.14))


def _strands(h: Head, region: np.ndarray, rgb, sx: float, ty: float) -> Clip:
    """Comb lines swept from the hairline back over the crown."""
    ops = []
    for x in (-0.5, -0.15, 0.2, 0.55):
        a = _line(h, [(x, -0.14)], smooth=False)[0]
        b = _shell(h, np.array([x * 40.0]), sx * 0.5, ty * 0.5)[0]
        ops.append(Stroke(np.stack([a + 0.25 * (b - a), a + 0.8 * (b - a)]), shade(rgb, 0.8),
                          0.004))
    return Clip(region, tuple(ops))


def _mohawk(h: Head, rgb, line, volume: float, capped: bool) -> Hair:
    if capped:
        return Hair()
    th = np.linspace(-40.0, 40.0, 33)
    crest = _wiggle(_shell(h, th, 0.1 - h.fw, 0.025 + 0.035 * volume), 6, 0.028 * volume, "spike")
    base = _line(h, [(0.3, -0.12), (0.0, -0.13), (-0.3, -0.12)])
    poly = np.concatenate([crest, base])
    return Hair(front=[Poly(poly, rgb, sem.HAIR, line, LINE_W)], front_region=poly,
                top=0.07 + 0.07 * volume)


def _long(h: Head, style: str, rgb, back_rgb, line, volume: float) -> Hair:
    sx, ty, bottom, ctrl, wave, curls = _LONG[style]
    sx, ty = sx * volume, ty * volume
    bottom = h.jaw_y + 0.05 if bottom is None else bottom
    xo = h.fw + sx
    ys = np.linspace(h.cheek_y, bottom, 14)
    t = (ys - h.cheek_y) / (bottom - h.cheek_y)
    sway = wave * np.sin(2.0 * np.pi * (ys - h.cheek_y) / 0.1)
    out_r = np.stack([h.cx + xo - 0.02 * t ** 2 + sway, ys], axis=1)  # cheek -> bottom
    top = _shell(h, np.linspace(-90.0, 90.0, 41), sx, ty)
    fringe = _line(h, ctrl)
    if style == "bangs":
        fringe = _wiggle(fringe, 7, 0.006)
    if curls:
        top = _wiggle(top, curls, 0.014)
        fringe = _wiggle(fringe, 6, 0.01)
    y_in = np.linspace(bottom - 0.012, fringe[0, 1], 14)
    hug = np.maximum(0.88 * _face_half_width(h, y_in), h.neck_w + 0.03)
    in_r = np.stack([h.cx + hug + sway[::-1] * 0.6, y_in], axis=1)  # bottom -> temple
    tip = np.array([[h.cx + 0.5 * (xo + hug[0]), bottom + 0.012]])
    right = np.concatenate([out_r, tip, in_r])  # cheek -> bottom -> temple
    left = mirror(right, h.cx)  # temple -> bottom -> cheek, on the left
    n_in = len(in_r)
    front = np.concatenate([left[n_in:], top, right, fringe, left[:n_in]])  # clockwise
    back_top = _shell(h, np.linspace(-90.0, 90.0, 31), sx + 0.01, ty)
    back_side = np.stack([h.cx + xo + 0.008 + sway, ys], axis=1)
    back = np.concatenate([mirror(back_side, h.cx), back_top, back_side,
                           [[h.cx + xo - 0.03, bottom + 0.01], [h.cx - xo + 0.03, bottom + 0.01]]])
    if curls:
        back = _wiggle(back, 24, 0.012)
    hair = Hair(back=[Poly(back, back_rgb, sem.HAIR, line, LINE_W)],
                front=[Poly(front, rgb, sem.HAIR, line, LINE_W), _highlight(h, rgb, sx, ty)],
                front_region=front, covers_ears=True, top=ty, side=sx)
    if ctrl is _MID_PART:
        hair.front.append(Stroke(_line(h, [(0.0, -0.152), (0.02, -0.2), (0.0, -0.24)]), line,
                                 0.004))
    return hair


# ---- facial hair -----------------------------------------------------------------------------
def facial_hair_ops(h: Head, style: str, rgb) -> tuple[list[Op], list[Op]]:
    """(ops drawn under the mouth, ops drawn over it)."""
    if style == "none":
        return [], []
    line = outline_of(rgb)
    pivot = (h.cx, EYE_LINE - 0.05)
    cx, my, mw = h.cx, h.mouth_y, h.mw
    outer = scale_about(h.lower_face(EYE_LINE + 0.03), 1.03, pivot)
    if style == "chin_strap":
        inner = scale_about(h.lower_face(EYE_LINE + 0.03), 0.955, pivot)[::-1]
        return [Poly(np.concatenate([outer, inner]), rgb, sem.HAIR, line, LINE_W)], []
    inner_r = [(0.9 * h.fw, EYE_LINE + 0.04), (0.78 * h.fw, EYE_LINE + 0.11),
               (mw + 0.018, my - 0.008), (0.3 * mw, my - 0.026)]
    inner = np.array([(cx - x, y) for x, y in inner_r] + [(cx + x, y) for x, y in inner_r[::-1]])
    beard = np.concatenate([outer, catmull_rom(inner, closed=False, samples=5)])
    if style == "stubble":
        return [Clip(h.face, (Poly(beard, rgba(rgb, 40)),))], []
    r = [(0.0, my - 0.025), (0.6 * mw, my - 0.022), (mw + 0.014, my + 0.006),
         (0.6 * mw, my - 0.006), (0.0, my - 0.01)]
    tache = catmull_rom([(cx + x, y) for x, y in r] + [(cx - x, y) for x, y in r[-2:0:-1]])
    tache_op = Poly(tache, rgb, sem.HAIR, line, LINE_W)
    if style == "moustache":
        return [], [tache_op]
    if style == "goatee":
        goatee = catmull_rom([[cx, my + 0.017], [cx + 0.03, my + 0.021],
                              [cx + 0.032, h.chin_y - 0.012], [cx, h.chin_y + 0.008],
                              [cx - 0.032, h.chin_y - 0.012], [cx - 0.03, my + 0.021]])
        return [Poly(goatee, rgb, sem.HAIR, line, LINE_W)], [tache_op]
    return [Poly(beard, rgb, sem.HAIR, line, LINE_W)], [tache_op]  # full_beard
