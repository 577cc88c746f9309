"""What a toon avatar wears: clothing, glasses and headwear."""
from __future__ import annotations

import numpy as np

from swiftavatar import semantics as sem
from swiftavatar.engines.toon_canvas import (Clip, Op, Poly, Stroke, catmull_rom, ellipse, mirror,
                                             mirror_op, mix, outline_of, rgba, scale_about,
                                             shade)
from swiftavatar.engines.toon_face import EYE_LINE, LINE_W, Head
from swiftavatar.engines.toon_schema import SEE_THROUGH_GLASSES

WHITE = (255, 255, 255)
SHOULDER_Y = 0.812  # where the top meets the neck


# ---- clothing --------------------------------------------------------------------------------
def clothing_ops(h: Head, style: str, rgb, chin_shadow: np.ndarray) -> list[Op]:
    """Shoulders and the top's neckline; `chin_shadow` (K, 2) darkens a turtleneck's collar."""
    cx, n, y0 = h.cx, h.neck_w, SHOULDER_Y
    line = outline_of(rgb)
    u = np.linspace(0.0, 1.0, 16)
    xs = n + 0.025 + u * (0.465 - n - 0.025)
    right = np.stack([cx + xs, y0 + 0.002 + 0.035 * u ** 1.5 + 0.13 * u ** 7], axis=1)
    body = np.concatenate([mirror(right, cx), right, [[cx + 0.47, 1.05], [cx - 0.47, 1.05]]])
    ops: list[Op] = [Poly(body, shade(rgb, 0.84), sem.CLOTH),
                     Poly(scale_about(body, 0.95, (cx - 0.12, 1.05)), rgb),
                     Poly(body, None, None, line, LINE_W)]
    crew = ellipse(cx, y0, n + 0.008, 0.04, 16, 0.0, 180.0)
    neck_line = outline_of(h.skin)
    if style in ("crew_tshirt", "hoodie", "jacket"):
        if style == "jacket":
            inner = (54, 56, 62) if sum(rgb) > 600 else (244, 244, 240)  # tee under it
            shirt = np.array([[cx - n - 0.014, y0], [cx + n + 0.014, y0], [cx + 0.07, 1.02],
                              [cx - 0.07, 1.02]])
            ops += [Poly(shirt, inner, sem.CLOTH, outline_of(inner), LINE_W)]
            for d in (-1, 1):
                lapel = np.array([[cx + d * (n + 0.014), y0 - 0.004],
                                  [cx + d * (n + 0.05), y0 + 0.03],
                                  [cx + d * (n + 0.02), y0 + 0.07],
                                  [cx + d * 0.07, 1.02], [cx + d * 0.04, 1.02]])
                ops.append(Poly(lapel, shade(rgb, 0.8), sem.CLOTH, line, LINE_W))
        ops += [Poly(crew, h.skin, sem.NECK, neck_line, LINE_W),
                Stroke(crew[1:-1], shade(rgb, 0.78), 0.01, sem.CLOTH)]
        if style == "hoodie":
            outer = [(n + 0.075, y0 - 0.012), (n + 0.06, y0 + 0.05), (0.0, y0 + 0.1)]
            u_out = catmull_rom([(cx + x, y) for x, y in outer] +
                                [(cx - x, y) for x, y in outer[-2::-1]], closed=False)
            u_in = crew[::-1]
            ops += [Poly(np.concatenate([u_out, u_in]), shade(rgb, 0.9), sem.CLOTH, line, LINE_W)]
            for d in (-1, 1):
                ops.append(Stroke(np.array([[cx + d * 0.028, y0 + 0.07], [cx + d * 0.033, 0.97]]),
                                  (236, 236, 232), 0.007, sem.CLOTH))
    elif style in ("v_neck", "collared_shirt"):
        depth = 0.09 if style == "v_neck" else 0.07
        vee = np.array([[cx - n - 0.006, y0 - 0.002], [cx + n + 0.006, y0 - 0.002],
                        [cx, y0 + depth]])
        ops += [Poly(vee, h.skin, sem.NECK, neck_line, LINE_W)]
        if style == "v_neck":
            ops.append(Stroke(vee[[0, 2, 1]], shade(rgb, 0.78), 0.01, sem.CLOTH))
        else:
            collar_rgb = mix(rgb, WHITE, 0.55)
            for d in (-1, 1):
                flap = np.array([[cx + d * (n + 0.004), y0 - 0.014],
                                 [cx + d * (n + 0.05), y0 + 0.012], [cx + d * 0.045, y0 + 0.085],
                                 [cx + d * 0.004, y0 + depth]])
                ops.append(Poly(flap, collar_rgb, sem.CLOTH, outline_of(collar_rgb), LINE_W))
            ops.append(Stroke(np.array([[cx, y0 + depth], [cx, 1.01]]), shade(rgb, 0.75), 0.005))
            ops += [Poly(ellipse(cx + 0.012, y, 0.006, 0.006, 10), collar_rgb, sem.CLOTH)
                    for y in (y0 + 0.11, y0 + 0.165)]
    elif style == "turtleneck":
        tube = np.array([[cx - n - 0.01, h.jaw_y + 0.01], [cx + n + 0.01, h.jaw_y + 0.01],
                         [cx + n + 0.014, y0 + 0.02], [cx, y0 + 0.03], [cx - n - 0.014, y0 + 0.02]])
        ops += [Poly(tube, rgb, sem.CLOTH),
                Clip(tube, (Poly(chin_shadow, shade(rgb, 0.8)),) +
                     tuple(Stroke(np.array([[cx + x, h.jaw_y + 0.02], [cx + x * 1.1, y0 + 0.02]]),
                                  shade(rgb, 0.85), 0.005) for x in (-0.05, -0.017, 0.017, 0.05))),
                Poly(tube, None, None, line, LINE_W)]
    return ops


# ---- glasses ---------------------------------------------------------------------------------
def _superellipse(a: float, b: float, p: float, n: int = 32) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / p
    return np.stack([a * np.sign(c) * np.abs(c) ** e, b * np.sign(s) * np.abs(s) ** e], axis=1)


def _lens(style: str, k: float) -> np.ndarray:
    """Right lens outline relative to the eye centre (outer side at +x)."""
    if style == "round":
        return ellipse(0.0, 0.0, 0.052 * k, 0.05 * k, 32)
    if style == "aviators":
        return catmull_rom(np.array([[-0.05, -0.036], [0.0, -0.04], [0.056, -0.036], [0.062, 0.0],
                                     [0.04, 0.044], [-0.01, 0.05], [-0.05, 0.018]]) * k, samples=5)
    pts = _superellipse(0.062 * k, 0.042 * k, 3.0 if style == "browline" else 4.0)
    if style == "cat_eye":
        lift = np.clip(pts[:, 0] / (0.062 * k), 0.0, 1.0) ** 2 * (pts[:, 1] < 0)
        pts = pts - np.stack([np.zeros(len(pts)), 0.022 * k * lift], axis=1)
    if style == "sunglasses":
        pts = pts * np.stack([1.06 + 0.08 * (pts[:, 1] < 0), np.ones(len(pts))], axis=1)
    return pts


def glasses_ops(h: Head, style: str, frame: tuple[int, int, int],
                eye_size: float) -> tuple[list[Op], list[Op]]:
    """(temple arms, drawn under the hair; lenses and bridge, drawn over it)."""
    if style == "none":
        return [], []
    k = 0.88 + 0.12 * eye_size
    ecx, ecy = h.cx + h.ex, h.eye_y + 0.002
    lens = _lens(style, k) + (ecx, ecy)
    x_in, x_out = lens[:, 0].min(), lens[:, 0].max()
    y_top = lens[:, 1].min()
    if style in SEE_THROUGH_GLASSES:
        tint = rgba((110, 80, 40), 70) if style == "aviators" else rgba((232, 244, 255), 36)
    else:
        tint = (30, 30, 38)
    rim = 0.0025 if style in ("aviators", "browline") else 0.0055
    rim_col = (176, 180, 190) if style == "browline" else frame
    right: list[Op] = [Poly(lens, tint, sem.EYEGLASSES, rim_col, rim)]
    if style == "browline":
        bar = lens[lens[:, 1] < ecy - 0.012 * k]
        right.append(Stroke(bar[np.argsort(bar[:, 0])], frame, 0.014, sem.EYEGLASSES))
    glare = np.array([[x_out - 0.022 * k, y_top + 0.012], [x_out - 0.034 * k, y_top + 0.03]])
    right.append(Stroke(glare, rgba(WHITE, 150 if style == "sunglasses" else 110), 0.005))
    bridge = np.array([[x_in + 0.002, y_top + 0.016], [h.cx, y_top + 0.008]])
    right.append(Stroke(bridge, frame, 0.006, sem.EYEGLASSES))
    arm = [Stroke(np.array([[x_out - 0.002, y_top + 0.012], [h.cx + h.fw + 0.006, y_top + 0.02]]),
                  frame, 0.006, sem.EYEGLASSES)]
    return (arm + [mirror_op(o, h.cx) for o in arm],
            right + [mirror_op(o, h.cx) for o in right])


# ---- headwear --------------------------------------------------------------------------------
def _arch(h: Head, theta: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Points on the skull ellipse grown by (dx, dy); theta in degrees, 0 = top, 90 = right."""
    t = np.radians(theta)
    return np.stack([h.cx + (h.fw + dx) * np.sin(t), h.cheek_y - (h.ry + dy) * np.cos(t)], axis=1)


def _dome(h: Head, dx: float, dy: float, y_bottom: float, n: int = 41) -> np.ndarray:
    """The skull ellipse grown by (dx, dy), cut at `y_bottom`: left rim, over the top, right rim."""
    cosv = np.clip((h.cheek_y - y_bottom) / (h.ry + dy), -1.0, 1.0)
    te = np.degrees(np.arccos(cosv))
    t = np.radians(np.linspace(-te, te, n))
    return np.stack([h.cx + (h.fw + dx) * np.sin(t), h.cheek_y - (h.ry + dy) * np.cos(t)], axis=1)


def headwear_ops(h: Head, style: str, rgb, hair_top: float, hair_side: float) -> list[Op]:
    """A hat sized to sit over the hair (`hair_top`, `hair_side`: how far the hair stands off
    the skull)."""
    if style == "none":
        return []
    cx, line, dark = h.cx, outline_of(rgb), shade(rgb, 0.82)
    dx, dy = max(0.04, hair_side + 0.022), max(0.05, hair_top + 0.016)
    if style == "headband":  # an arch over the front of the hair, ear to ear
        th = np.linspace(-84.0, 84.0, 29)
        outer = _arch(h, th, hair_side - 0.002, hair_top - 0.01)
        inner = _arch(h, th[::-1], hair_side - 0.024, hair_top - 0.034)
        band = np.concatenate([outer, inner])
        shine = _arch(h, th[5:-5], hair_side - 0.009, hair_top - 0.018)
        return [Poly(band, rgb, sem.HAT, line, LINE_W),
                Stroke(shine, mix(rgb, WHITE, 0.35), 0.004)]
    if style == "beret":
        y = h.top - hair_top + 0.04
        body = ellipse(cx + 0.02, y, h.fw + dx + 0.025, 0.078, 40, rot=-8.0)
        band = ellipse(cx + 0.02, y - 0.012, h.fw + dx - 0.005, 0.075, 16, 40.0, 140.0, rot=-8.0)
        return [Poly(ellipse(cx + 0.035, y - 0.082, 0.008, 0.012, 10), dark, sem.HAT),
                Poly(body, rgb, sem.HAT, line, LINE_W),
                Clip(body, (Stroke(band, dark, 0.012),
                            Poly(ellipse(cx - 0.06, y - 0.04, 0.07, 0.018, 16, rot=-8.0),
                                 mix(rgb, WHITE, 0.18)))),
                ]
    y_b = EYE_LINE - (0.085 if style == "beanie" else 0.095)
    dome = _dome(h, dx, dy, y_b)
    ops: list[Op] = [Poly(dome, rgb, sem.HAT, line, LINE_W)]
    if style == "cap":
        ops.append(Clip(dome, tuple(Stroke(np.array([[cx, h.top - dy], [cx + x, y_b]]), dark, 0.004)
                                    for x in (-0.6 * h.fw, 0.6 * h.fw))))
        ops.append(Poly(ellipse(cx, h.top - dy + 0.004, 0.014, 0.007, 12), dark, sem.HAT))
        w = h.fw + dx + 0.01
        brim = catmull_rom([[cx - w, y_b - 0.004], [cx, y_b - 0.012], [cx + w, y_b - 0.004],
                            [cx + 0.55 * w, y_b + 0.034], [cx, y_b + 0.042],
                            [cx - 0.55 * w, y_b + 0.034]], samples=6)
        ops.append(Poly(brim, dark, sem.HAT, line, LINE_W))
    elif style == "beanie":
        xs = np.linspace(-1.0, 1.0, 13)
        w = h.fw + dx + 0.008
        droop = 0.03 * xs ** 4
        upper = np.stack([cx + w * xs, y_b - 0.05 + droop], 1)
        cuff = np.concatenate([upper, np.stack([cx + w * xs, y_b + 0.004 + droop], 1)[::-1]])
        ribs = tuple(Stroke(np.array([[cx + x, y_b - 0.06], [cx + x, y_b + 0.04]]),
                            shade(rgb, 0.72), 0.004) for x in np.linspace(-w, w, 13)[1:-1])
        pom = _wiggle_circle(cx, h.top - dy - 0.012, 0.032)
        ops += [Poly(cuff, dark, sem.HAT, line, LINE_W), Clip(cuff, ribs),
                Poly(pom, mix(rgb, WHITE, 0.3), sem.HAT, line, LINE_W)]
    else:  # bucket_hat
        wt, wb = h.fw + dx + 0.004, h.fw + dx + 0.065
        brim = catmull_rom([[cx - wt, y_b - 0.016], [cx, y_b - 0.024], [cx + wt, y_b - 0.016],
                            [cx + wb, y_b + 0.058], [cx, y_b + 0.045], [cx - wb, y_b + 0.058]],
                           samples=6)
        ops += [Poly(brim, dark, sem.HAT, line, LINE_W),
                Stroke(np.array([[cx - wt + 0.006, y_b - 0.02], [cx, y_b - 0.028],
                                 [cx + wt - 0.006, y_b - 0.02]]), shade(rgb, 0.7), 0.008)]
    return ops


def _wiggle_circle(x: float, y: float, r: float, bumps: int = 9) -> np.ndarray:
    """A fluffy circle (pom-pom)."""
    t = np.linspace(0.0, 2.0 * np.pi, 4 * bumps, endpoint=False)
    rr = r * (1.0 + 0.08 * np.cos(bumps * t))
    return np.stack([x + rr * np.cos(t), y + rr * np.sin(t)], axis=1)
