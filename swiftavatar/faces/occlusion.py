"""Partial occluders of the randomised face domain: a hand at the chin or cheek, a microphone
below the mouth, a strand of hair across one side of the face.

Each lies in one half of the face or below the eyes, so it never hides both eyes; hands and
microphones are labelled background (as CelebAMask-HQ labels what is not a head part), a
strand is labelled hair. Shapes live in the head frame (they move with the head)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swiftavatar.faces.attributes import RGB
from swiftavatar.faces.layout import Canvas
from swiftavatar.faces.shading import F32, coverage, dome, normals, rgb255_linear, shade
from swiftavatar.semantics import BACKGROUND, HAIR

KINDS: tuple[str, ...] = ("hand", "microphone", "strand")
EYE_CLEAR_Y = 0.02     # hands and microphones stay below this (the eyes sit at y = -0.16)
MIDLINE_GAP = 0.06     # a strand stays on its side of the midline, past this


@dataclass(frozen=True)
class Occluder:
    """One occluder: `side` -1 (image left) or +1; `x`, `y` its anchor (head frame; x is
    mirrored by side), `size` a scale, `bend` a strand's sway, `rgb` its sRGB colour."""

    kind: str
    side: int
    x: float
    y: float
    size: float
    bend: float
    rgb: RGB


def sample_occluder(rng: np.random.Generator, skin_rgb: RGB, hair_rgb: RGB) -> Occluder:
    """Draw an occluder (a fixed number of draws whatever the kind)."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
    side = 1 if rng.random() < 0.5 else -1
    x, y, size, bend = (float(rng.uniform(0, 1)) for _ in range(4))
    grey = int(rng.integers(20, 90))
    if kind == "hand":
        rgb, x, y = skin_rgb, 0.2 + 0.3 * x, 0.1 + 0.3 * y
    elif kind == "microphone":
        rgb, x, y = (grey, grey, grey), 0.3 * x, 0.4 + 0.2 * y
    else:
        rgb, x, y = hair_rgb, 0.12 + 0.25 * x, -0.05 + 0.4 * y
    return Occluder(kind=kind, side=side, x=x, y=y, size=0.8 + 0.4 * size,
                    bend=0.03 + 0.08 * bend, rgb=rgb)


def _capsule(x, y, ax, ay, bx, by, r) -> np.ndarray:
    """Signed distance to the segment (ax, ay)-(bx, by) thickened by r."""
    px, py, dx, dy = x - ax, y - ay, bx - ax, by - ay
    t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
    return (np.hypot(px - t * dx, py - t * dy) - r).astype(F32)


def occluder_sdf(o: Occluder, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (head-frame units) to the occluder's silhouette."""
    xs = x * o.side                                     # mirrored: the occluder's side is +x
    s = o.size
    if o.kind == "hand":                                # palm, four fingers, forearm
        py = o.y + 0.2 * s
        d = _capsule(xs, y, o.x, py, o.x + 0.05, py + 0.12 * s, 0.11 * s)
        for k in range(4):
            fx = o.x - 0.06 * s + 0.04 * s * k
            d = np.minimum(d, _capsule(xs, y, fx, py, fx - 0.03 * s, o.y + 0.03, 0.02 * s))
        d = np.minimum(d, _capsule(xs, y, o.x + 0.05, py + 0.1 * s, o.x + 0.25, 1.6, 0.09 * s))
        return np.maximum(d, EYE_CLEAR_Y - y)
    if o.kind == "microphone":                          # mesh ball on a handle
        r = 0.07 * s
        d = np.minimum(np.hypot(xs - o.x, y - o.y) - r,
                       _capsule(xs, y, o.x, o.y, o.x + 0.1, 1.6, 0.028 * s))
        return np.maximum(d, EYE_CLEAR_Y - y).astype(F32)
    # strand: a thin band hanging from the top of the head to y = o.y, swaying sideways
    t = (y + 0.8) / (o.y + 0.8)
    cx = o.x + o.bend * np.sin(np.pi * t)
    slope = o.bend * np.pi / (o.y + 0.8) * np.cos(np.pi * t)
    d = (np.abs(xs - cx) - 0.018 * s) / np.sqrt(1 + slope ** 2)
    d = np.maximum(d, np.maximum(y - o.y, -0.8 - y))
    return np.maximum(d, MIDLINE_GAP - xs).astype(F32)


def paint_occluder(cv: Canvas, o: Occluder) -> None:
    """Paint `o` over everything, shaded by the canvas's light, with its class."""
    x, y, pix = cv.grid.x, cv.grid.y, cv.grid.pix
    sdf = occluder_sdf(o, x, y)
    if not np.any(sdf < pix):
        return
    alb = rgb255_linear(o.rgb)
    if o.kind == "microphone":                          # mesh texture on the ball
        mesh = 1 + 0.5 * (np.sin(x * 260) * np.sin(y * 260) > 0.3)
        alb = alb * mesh[..., None].astype(F32)
    radius = {"hand": 0.06, "microphone": 0.05, "strand": 0.015}[o.kind]
    col = shade(np.broadcast_to(alb, x.shape + (3,)).astype(F32),
                normals(dome(sdf, radius), pix), cv.light, wrap=(0.3, 0.2, 0.15),
                spec=0.25 if o.kind == "microphone" else 0.05, shininess=20.0)
    cv.paint(coverage(sdf, pix), col, HAIR if o.kind == "strand" else BACKGROUND)


__all__ = ["KINDS", "Occluder", "occluder_sdf", "paint_occluder", "sample_occluder"]
