"""Eyes and eyebrows of a toon avatar (drawn for the image-right side, then mirrored)."""
from __future__ import annotations

import numpy as np

from swiftavatar import semantics as sem
from swiftavatar.engines.toon_canvas import (Clip, Op, Poly, Stroke, ellipse, mirror_op, mix,
                                             rgba, rotate, shade)
from swiftavatar.engines.toon_face import Head

SCLERA, LASH, PUPIL = (252, 252, 250), (40, 28, 32), (24, 18, 22)

# style: (upper height, lower height, corner sharpness exponent, iris radius), in half widths
_EYE_SHAPES = {
    "round": (0.82, 0.82, 0.5, 0.6),
    "almond": (0.72, 0.42, 0.8, 0.56),
    "narrow": (0.42, 0.26, 0.8, 0.5),
    "sleepy": (0.38, 0.5, 0.35, 0.56),
    "lashes": (0.72, 0.42, 0.8, 0.56),
}


def _eye_outline(hu: float, hl: float, p: float, n: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """(opening polygon, upper lid polyline) in eye-local units, outer corner at x = +1."""
    x = np.cos(np.linspace(0.0, np.pi, n))  # +1 .. -1
    skew = 0.12 * (1.0 - x ** 2)  # the upper arc peaks a little towards the inner corner
    upper = np.stack([x - skew, -hu * (1.0 - x ** 2) ** p], axis=1)
    lower = np.stack([-x, hl * (1.0 - x ** 2) ** p], axis=1)
    return np.concatenate([upper, lower[1:-1]]), upper


def eye_ops(h: Head, style: str, iris_rgb: tuple[int, int, int], tilt: float) -> list[Op]:
    """Both eyes: the opening (eyes class), iris, pupil and glint clipped to it, the lash line
    and lid details; `tilt` in degrees raises the outer corners."""
    ecx, ecy, ew = h.cx + h.ex, h.eye_y, h.ew

    def place(local: np.ndarray) -> np.ndarray:  # local units -> unit coordinates (right eye)
        return rotate(local * ew + (ecx, ecy), -tilt, (ecx, ecy))

    if style == "dot":
        dot = place(ellipse(0.0, 0.0, 0.4, 0.56, 24))
        right: list[Op] = [Poly(dot, PUPIL, sem.EYES),
                           Poly(place(ellipse(0.14, -0.2, 0.14, 0.14, 10)), (255, 255, 255))]
    else:
        hu, hl, p, ri = _EYE_SHAPES[style]
        opening, upper = _eye_outline(hu, hl, p)
        opening, upper = place(opening), place(upper)
        iy = 0.12 if style == "sleepy" else 0.04
        iris = place(ellipse(-0.04, iy, ri, ri, 24))
        right = [
            Poly(opening, SCLERA, sem.EYES),
            Clip(opening, (Poly(iris, iris_rgb, None, shade(iris_rgb, 0.55), 0.004),
                           Poly(place(ellipse(-0.04, iy, 0.5 * ri, 0.5 * ri, 16)), PUPIL),
                           Poly(place(ellipse(0.16, iy - 0.24, 0.17, 0.17, 10)),
                                (255, 255, 255)),
                           Poly(place(ellipse(-0.04, -hu - 0.05, 1.2, 0.22, 16)),
                                rgba((120, 90, 90), 40)))),
            Stroke(upper, LASH, 0.0065 if style != "narrow" else 0.0055, sem.EYES),
        ]
        if style in ("round", "almond", "lashes"):  # lid crease
            crease = place(np.stack([np.linspace(0.7, -0.6, 8),
                                     -hu - 0.32 - 0.18 * (1 - np.linspace(-0.9, 0.9, 8) ** 2)],
                                    axis=1))
            right.append(Stroke(crease, rgba(h.skin_line, 110), 0.0028))
        if style == "sleepy":  # heavy lid
            right.append(Stroke(place(np.stack([np.linspace(0.95, -0.95, 8), np.full(8, -hu - 0.3)],
                                               axis=1)), rgba(h.skin_line, 120), 0.003))
        if style == "lashes":
            for k, (dx, dy) in enumerate([(0.38, -0.34), (0.34, -0.22), (0.26, -0.08)]):
                base = upper[1 + k * 2]
                right.append(Stroke(np.array([base, base + rotate(np.array([[dx, dy]]), -tilt,
                                                                (0, 0))[0] * ew * 0.7]),
                                    LASH, 0.004, sem.EYES))
    return right + [mirror_op(o, h.cx) for o in right]


# style: (arch height, arch peak position, inner thickness, outer thickness), in half lengths
_BROW_SHAPES = {
    "natural": (0.18, 0.25, 0.011, 0.006),
    "thin": (0.2, 0.2, 0.0055, 0.0038),
    "thick": (0.12, 0.2, 0.017, 0.012),
    "arched": (0.36, 0.35, 0.01, 0.005),
    "straight": (0.03, 0.0, 0.011, 0.0095),
    "bushy": (0.14, 0.2, 0.019, 0.014),
}


def brow_ops(h: Head, style: str, hair_rgb: tuple[int, int, int], tilt: float, raise_: float,
             thickness: float) -> list[Op]:
    """Both brows as tapered bands along an arch, in a darker tone of the hair colour."""
    a, xp, t0, t1 = _BROW_SHAPES[style]
    hl = 0.045 + 0.1 * (h.ew - 0.04)
    bx, by = h.cx + h.ex + 0.006, h.eye_y - 0.9 * h.ew - 0.028 - raise_
    x = np.linspace(-1.0, 1.0, 14)  # inner .. outer
    cy = -a * (1.0 - ((x - xp) / 1.4) ** 2)
    centre = np.stack([bx + hl * x, by + hl * cy], axis=1)
    d = np.gradient(centre, axis=0)
    nrm = np.stack([d[:, 1], -d[:, 0]], axis=1)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)  # points up
    half = 0.5 * thickness * (t0 + (t1 - t0) * (x + 1.0) / 2.0)
    half[-1] *= 0.35  # tapered outer tip
    top = centre + nrm * half[:, None]
    if style == "bushy":
        top = top + nrm * (0.0022 * thickness * (np.arange(14) % 2))[:, None]
    bot = centre - nrm * half[:, None]
    poly = rotate(np.concatenate([top, bot[::-1]]), -tilt, (bx, by))
    colour = mix(hair_rgb, (22, 16, 16), 0.3)
    right: list[Op] = [Poly(poly, colour, sem.BROWS)]
    return right + [mirror_op(o, h.cx) for o in right]
