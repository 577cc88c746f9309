"""Head geometry and the skin parts of a toon avatar: face, ears, neck, nose, mouth, cheeks.

All coordinates are unit image coordinates; the head is built upright and the caller rotates
the head parts by `Head.tilt` about `Head.pivot`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swiftavatar import semantics as sem
from swiftavatar.engines.toon_canvas import (Clip, Op, Poly, Stroke, catmull_rom, ellipse, mirror,
                                             mirror_op, mix, outline_of, rgba, rotate,
                                             scale_about, shade)
from swiftavatar.engines.toon_schema import SKIN_TONES, ToonParams

EYE_LINE = 0.445  # eye height of the default face (aligned-crop convention: about 0.4-0.45)
LINE_W = 0.0045  # outline width, image heights


@dataclass(frozen=True)
class Head:
    """Key measurements of the (upright) head, all in unit coordinates."""

    cx: float
    top: float  # skull top
    cheek_y: float  # where the face is widest
    fw: float  # half face width at cheek_y
    jaw_y: float
    jw: float  # half jaw width
    chin_y: float
    face: np.ndarray  # (K, 2) closed outline, starting at the top, clockwise
    eye_y: float
    ex: float  # eye centre offset from cx
    ew: float  # eye half width
    nose_y: float  # nose tip
    mouth_y: float
    mw: float  # mouth half width
    neck_w: float  # neck half width
    skin: tuple[int, int, int]
    skin_shade: tuple[int, int, int]
    skin_line: tuple[int, int, int]
    tilt: float  # degrees
    pivot: tuple[float, float]

    @property
    def ry(self) -> float:
        """Vertical radius of the skull ellipse (top to cheek line)."""
        return self.cheek_y - self.top

    def lower_face(self, y_from: float) -> np.ndarray:
        """The face outline below `y_from`, right side down, round the chin, up the left."""
        f = self.face
        k = int(np.argmax(f[:, 1]))  # chin
        right = f[:k + 1]
        left = f[k + 1:]
        return np.concatenate([right[right[:, 1] >= y_from], left[left[:, 1] >= y_from]])

    def upper_face(self, y_to: float) -> np.ndarray:
        """The face outline above `y_to` (left side up, over the top, right side down)."""
        f = self.face
        k = int(np.argmax(f[:, 1]))
        right, left = f[:k + 1], f[k + 1:]
        return np.concatenate([left[left[:, 1] < y_to], right[right[:, 1] < y_to]])

    def rot(self, pts: np.ndarray) -> np.ndarray:
        return rotate(pts, self.tilt, self.pivot)


def build_head(p: ToonParams) -> Head:
    """Measure the head from the face-shape and feature sliders."""
    c = p.c
    cx = 0.5
    fw = 0.215 * c["face_width"]
    fl = c["face_length"]
    top = EYE_LINE - 0.255 * fl
    cheek_y = EYE_LINE + 0.035
    jaw_y = EYE_LINE + 0.18 * fl
    jw = fw * c["jaw_width"]
    chin_y = EYE_LINE + fl * (0.21 + 0.055 * c["chin_length"])
    cw = 0.3 * jw
    ry = cheek_y - top
    a = np.radians([38.0, 68.0])
    side = np.array([  # right half, top to chin (x offsets from cx)
        [0.0, top],
        *np.stack([fw * np.sin(a), cheek_y - ry * np.cos(a)], axis=1),
        [fw, cheek_y],
        [0.5 * (fw + jw) + 0.012, 0.5 * (cheek_y + jaw_y)],
        [jw, jaw_y],
        [0.5 * (jw + cw) + 0.004, jaw_y + 0.62 * (chin_y - jaw_y)],
        [cw, chin_y - 0.006],
    ])
    ctrl = np.concatenate([side, [[0.0, chin_y]], mirror(side[1:], 0.0)])
    ctrl[:, 0] += cx
    face = catmull_rom(ctrl, closed=True, samples=5)
    skin = SKIN_TONES[p.d["skin_tone"]]
    ey = EYE_LINE + c["eye_height"]
    return Head(
        cx=cx, top=top, cheek_y=cheek_y, fw=fw, jaw_y=jaw_y, jw=jw, chin_y=chin_y, face=face,
        eye_y=ey, ex=0.09 * c["eye_spacing"], ew=0.046 * c["eye_size"],
        nose_y=EYE_LINE + 0.1 * fl, mouth_y=EYE_LINE + 0.162 * fl + 0.01 * (c["chin_length"] - 1),
        mw=0.05 * c["mouth_width"], neck_w=0.062 + 0.1 * fw,
        skin=skin, skin_shade=mix(shade(skin, 0.88), (190, 70, 70), 0.05),
        skin_line=outline_of(skin), tilt=c["head_tilt"], pivot=(cx, jaw_y + 0.07))


def face_ops(h: Head) -> list[Op]:
    """Face fill with a cel-shaded crescent on the lower right (light from the upper left)."""
    anchor = (h.cx - 0.55 * h.fw, h.top + 0.3 * (h.chin_y - h.top))
    return [Poly(h.face, h.skin_shade, sem.SKIN),
            Poly(scale_about(h.face, 0.94, anchor), h.skin),
            Poly(h.face, None, None, h.skin_line, LINE_W)]


def ear_ops(h: Head, ear_size: float) -> list[Op]:
    """Both ears (drawn before the face, which covers their inner half)."""
    rx, ry = 0.03 * ear_size, 0.05 * ear_size
    ecx, ecy = h.cx + 0.96 * h.fw + 0.006, h.eye_y + 0.05
    right = [Poly(ellipse(ecx, ecy, rx, ry, 28, rot=12.0), h.skin, sem.EARS, h.skin_line, LINE_W),
             Stroke(ellipse(ecx + 0.004, ecy, 0.5 * rx, 0.55 * ry, 12, -110.0, 100.0, rot=12.0),
                    h.skin_shade, 0.006)]
    return right + [mirror_op(o, h.cx) for o in right]


def earring_ops(h: Head, style: str, ear_size: float) -> list[Op]:
    """Earrings hanging from both ear lobes."""
    if style == "none":
        return []
    gold, line = (236, 196, 84), (150, 106, 30)
    x, y = h.cx + 0.96 * h.fw + 0.01, h.eye_y + 0.05 + 0.042 * ear_size
    if style == "studs":
        right = [Poly(ellipse(x, y, 0.008, 0.008, 12), gold, sem.EARRING, line, 0.003)]
    elif style == "hoops":
        right = [Stroke(ellipse(x, y + 0.02, 0.016, 0.02, 20), gold, 0.005, sem.EARRING, True)]
    else:  # drops
        drop = catmull_rom([[x, y], [x + 0.009, y + 0.026], [x, y + 0.036], [x - 0.009, y + 0.026]])
        right = [Stroke(np.array([[x, y], [x, y + 0.012]]), line, 0.003, sem.EARRING),
                 Poly(drop, (90, 170, 220), sem.EARRING, (40, 90, 140), 0.003)]
    return right + [mirror_op(o, h.cx) for o in right]


def neck_ops(h: Head) -> list[Op]:
    """The neck, with the chin's shadow falling on it (the head may be rolled)."""
    n, cx = h.neck_w, h.cx
    pts = np.array([[cx - n, h.jaw_y - 0.05], [cx + n, h.jaw_y - 0.05], [cx + n, 0.8],
                    [cx + n + 0.03, 0.92], [cx - n - 0.03, 0.92], [cx - n, 0.8]])
    chin_shadow = h.rot(h.lower_face(h.jaw_y - 0.06)) + (0.0, 0.04)
    return [Poly(pts, h.skin, sem.NECK),
            Clip(pts, (Poly(chin_shadow, shade(h.skin, 0.8)),)),
            Poly(pts, None, None, h.skin_line, LINE_W)]


def nose_ops(h: Head, style: str, size: float) -> list[Op]:
    """A skin-coloured nose region (the mask's nose class) with the style's line work."""
    cx, y, s = h.cx, h.nose_y, size
    line = mix(h.skin_line, h.skin, 0.12)
    region = catmull_rom([[cx, h.eye_y + 0.01], [cx + 0.012 * s, y - 0.045 * s],
                          [cx + 0.027 * s, y], [cx + 0.018 * s, y + 0.015 * s],
                          [cx, y + 0.018 * s], [cx - 0.018 * s, y + 0.015 * s],
                          [cx - 0.027 * s, y], [cx - 0.012 * s, y - 0.045 * s]])
    ops: list[Op] = [Poly(region, h.skin, sem.NOSE)]
    nostrils = [Poly(ellipse(cx + d * 0.011 * s, y + 0.008 * s, 0.0045 * s, 0.0032 * s, 10),
                     shade(h.skin, 0.6)) for d in (-1, 1)]
    bridge = np.array([[cx + 0.006 * s, h.eye_y + 0.02], [cx + 0.012 * s, y - 0.03 * s],
                       [cx + 0.018 * s, y - 0.006]])
    ops.append(Stroke(bridge, rgba(shade(h.skin, 0.75), 90), 0.006))  # shade beside the bridge
    if style == "button":
        ops += [Stroke(ellipse(cx, y, 0.02 * s, 0.013 * s, 12, 15.0, 165.0), line, 0.005)]
        ops += nostrils
    elif style == "pointed":
        ridge = np.array([[cx + 0.003, y - 0.05 * s], [cx + 0.017 * s, y - 0.003],
                          [cx + 0.012 * s, y + 0.012 * s], [cx - 0.004 * s, y + 0.012 * s]])
        ops += [Poly(ridge[:3], rgba(shade(h.skin, 0.8), 90)),
                Stroke(ridge, line, 0.0045)]
    elif style == "round":
        ops += [Poly(ellipse(cx, y, 0.021 * s, 0.017 * s, 20), shade(h.skin, 0.93), None, line,
                     0.0035),
                Poly(ellipse(cx - 0.007 * s, y - 0.006 * s, 0.005 * s, 0.004 * s, 10),
                     rgba((255, 255, 255), 110))]
    else:  # wide
        for d in (-1, 1):
            ops.append(Stroke(ellipse(cx + d * 0.02 * s, y + 0.002, 0.01 * s, 0.011 * s, 10,
                                      90.0 - d * 110.0, 90.0 - d * 10.0), line, 0.004))
        ops += [Stroke(np.array([[cx - 0.01 * s, y + 0.012 * s], [cx + 0.01 * s, y + 0.012 * s]]),
                       line, 0.004)] + nostrils
    return ops


LIP = (196, 70, 84)
MOUTH_DARK, TEETH, TONGUE = (92, 28, 40), (250, 248, 240), (226, 104, 116)


def mouth_ops(h: Head, style: str, curve: float, lips: float) -> list[Op]:
    """Closed lips (smile, neutral, smirk) or an open mouth (grin, laugh, open); `curve`
    lifts the corners, `lips` scales lip thickness."""
    cx, y0 = h.cx, h.mouth_y
    lip = mix(h.skin, LIP, 0.5)
    lip_line = outline_of(lip)
    if style == "open":
        o = ellipse(cx, y0 + 0.008, 0.5 * h.mw, 0.024 + 0.004 * lips, 28)
        return [Poly(o, MOUTH_DARK, sem.MOUTH),
                Clip(o, (Poly(ellipse(cx, y0 + 0.034, 0.016, 0.012, 16), TONGUE),)),
                Poly(o, None, None, lip, 0.0045 * lips)]
    if style in ("grin", "laugh"):
        big = style == "laugh"
        mw = h.mw * (1.12 if big else 1.0)
        x = np.linspace(-1.0, 1.0, 17)
        lift = 0.014 * max(curve, 0.0) + (0.01 if big else 0.004)
        top_y = y0 - 0.004 - lift * x ** 2
        depth = (0.045 if big else 0.028) + 0.008 * max(curve, 0.0)
        bot_y = top_y + depth * (1.0 - x ** 2) ** 0.8
        top = np.stack([cx + mw * x, top_y], axis=1)
        poly = np.concatenate([top, np.stack([cx + mw * x, bot_y], axis=1)[::-1][1:-1]])
        teeth = np.concatenate([top, top[::-1] + (0.0, 0.013)])
        return [Poly(poly, MOUTH_DARK, sem.MOUTH),
                Clip(poly, (Poly(teeth, TEETH),
                            Poly(ellipse(cx, y0 - 0.004 + depth + 0.003, 0.55 * mw, 0.016, 16),
                                 TONGUE))),
                Poly(poly, None, None, lip_line, 0.004)]
    # closed lips: smile, neutral, smirk
    c = curve * (0.35 if style == "neutral" else 1.0)
    t = lips * (0.7 if style == "neutral" else 1.0)
    x = np.linspace(-1.0, 1.0, 17)
    if style == "smirk":
        corner = np.where(x > 0, 0.022 + 0.006 * c, 0.002 * c)
    else:
        corner = np.full_like(x, 0.016 * c)
    mid = y0 - corner * x ** 2  # the line where the lips meet
    bulge = (1.0 - x ** 2) ** 0.7
    upper = mid - (0.008 + 0.003 * (np.abs(x) > 0.15)) * t * bulge  # dip at the centre
    lower = mid + 0.011 * t * bulge
    poly = np.concatenate([np.stack([cx + h.mw * x, upper], axis=1),
                           np.stack([cx + h.mw * x, lower], axis=1)[::-1][1:-1]])
    seam = np.stack([cx + h.mw * 1.06 * x, y0 - corner * (1.06 * x) ** 2], axis=1)
    ops: list[Op] = [Poly(poly, lip, sem.MOUTH),
                     Poly(ellipse(cx - 0.2 * h.mw, y0 + 0.005 * t, 0.28 * h.mw, 0.0025 * t, 10),
                          mix(lip, (255, 255, 255), 0.3)),
                     Stroke(seam, lip_line, 0.0045)]
    if style == "smirk":
        ops.append(Stroke(ellipse(cx + 1.1 * h.mw, y0 - 0.022, 0.006, 0.01, 8, -60.0, 60.0),
                          h.skin_line, 0.003))
    return ops


def cheek_ops(h: Head, style: str) -> list[Op]:
    """Blush or freckles: image-only marks on the skin."""
    y = h.eye_y + 0.08
    if style == "blush":
        return [Poly(ellipse(h.cx + d * (h.ex + 0.012), y, 0.032, 0.017, 24),
                     rgba((240, 110, 124), 72)) for d in (-1, 1)]
    if style == "freckles":
        dots = np.array([[-0.02, -0.006], [-0.006, -0.01], [0.008, -0.004], [0.02, 0.002],
                         [-0.013, 0.006], [0.002, 0.008], [0.016, 0.012]])
        col = shade(h.skin, 0.72)
        return [Poly(ellipse(h.cx + d * (h.ex + dx), y + dy, 0.0033, 0.0033, 8), col)
                for d in (-1, 1) for dx, dy in dots]
    return []
