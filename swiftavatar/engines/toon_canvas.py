"""Vector drawing for the toon engine: curve helpers, draw ops and the two painters.

A scene is a list of ops in unit coordinates ((0, 0) top-left, (1, 1) bottom-right). The same
list is painted twice: in colour on a supersampled canvas that is box-filtered down (smooth
edges), and as class ids at the output size (the mask). Both follow painter's order, so mask
and image come from one geometry. Ops with `cls=None` touch only the image (shading, glints).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence, Union

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, ...]  # RGB, or RGBA for a translucent fill


# ---- colours ---------------------------------------------------------------------------------
def mix(a: Sequence[int], b: Sequence[int], t: float) -> tuple[int, int, int]:
    """Linear blend a -> b by t in [0, 1]."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a[:3], b[:3]))  # type: ignore


def shade(c: Sequence[int], k: float) -> tuple[int, int, int]:
    """Scale a colour's brightness by k (k < 1 darker)."""
    return tuple(int(round(min(255.0, x * k))) for x in c[:3])  # type: ignore


def outline_of(c: Sequence[int]) -> tuple[int, int, int]:
    """The dark outline drawn around a part of colour c (a deep tone of the same hue)."""
    return mix(shade(c, 0.42), (28, 20, 24), 0.35)


def rgba(c: Sequence[int], a: int) -> tuple[int, int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]), int(a))


# ---- curves (all return (K, 2) float64 arrays) ----------------------------------------------
@lru_cache(maxsize=256)
def _arc(n: int, a0: float, a1: float) -> np.ndarray:
    """(n, 2) unit-circle points from a0 to a1 degrees (a full turn has no repeated end)."""
    full = abs(a1 - a0) >= 360.0
    t = np.radians(np.linspace(a0, a1, n, endpoint=not full))
    out = np.empty((n, 2))
    out[:, 0], out[:, 1] = np.cos(t), np.sin(t)
    out.flags.writeable = False
    return out


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40,
            a0: float = 0.0, a1: float = 360.0, rot: float = 0.0) -> np.ndarray:
    """Points on an ellipse; angles in degrees, 0 = +x, 90 = down (image y). A full turn is
    returned without a repeated end point; `rot` rotates the ellipse about its centre."""
    pts = _arc(n, float(a0), float(a1)) * (rx, ry)
    if rot:
        pts = pts @ _rot_t(rot)
    return pts + (cx, cy)


@lru_cache(maxsize=16)
def _cr_weights(samples: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[:, None]  # (S, 1)
    t2, t3 = t * t, t * t * t
    w = np.concatenate([-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0,
                        -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2], axis=1)  # (S, 4)
    w.flags.writeable = False
    return w


@lru_cache(maxsize=128)
def _cr_segments(k: int, closed: bool) -> np.ndarray:
    if closed:
        idx = np.arange(k)
        return np.stack([(idx - 1) % k, idx, (idx + 1) % k, (idx + 2) % k], axis=1)  # (K, 4)
    return np.arange(k - 1)[:, None] + np.arange(4)  # (K-1, 4) into the end-padded points


def catmull_rom(ctrl: np.ndarray | Sequence, closed: bool = True, samples: int = 8) -> np.ndarray:
    """A smooth curve through control points (K, 2) (uniform Catmull-Rom)."""
    p = np.asarray(ctrl, np.float64)
    k = len(p)
    if not closed:
        p = np.concatenate([p[:1], p, p[-1:]])
    pts = np.einsum("sj,kjd->ksd", _cr_weights(samples), p[_cr_segments(k, closed)]).reshape(-1, 2)
    return pts if closed else np.concatenate([pts, p[-2:-1]])


@lru_cache(maxsize=64)
def _rot_t(deg: float) -> np.ndarray:
    """Transposed rotation matrix: row vectors @ it rotate clockwise on screen by deg."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    m = np.array([[c, s], [-s, c]])
    m.flags.writeable = False
    return m


def rotate(pts: np.ndarray, deg: float, pivot: Sequence[float]) -> np.ndarray:
    """Rotate points clockwise on screen (y down) by `deg` degrees about `pivot`."""
    if not deg:
        return pts
    return (pts - pivot) @ _rot_t(float(deg)) + pivot


def scale_about(pts: np.ndarray, k: float | Sequence[float], pivot: Sequence[float]) -> np.ndarray:
    return (pts - pivot) * k + pivot


def mirror(pts: np.ndarray, cx: float = 0.5) -> np.ndarray:
    """Mirror left-right about x = cx (order reversed, so winding is kept)."""
    out = pts[::-1].copy()
    out[:, 0] = 2.0 * cx - out[:, 0]
    return out


# ---- ops -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Poly:
    """A filled polygon; `outline` is drawn inside its edge, so the mask is the fill exactly.
    With neither fill nor outline it paints only the mask (a class seen through a lens)."""

    pts: np.ndarray  # (K, 2) unit coordinates
    fill: Colour | None
    cls: int | None = None
    outline: Colour | None = None
    width: float = 0.0  # outline width, image heights


@dataclass(frozen=True)
class Stroke:
    """A polyline of a given width with round joints."""

    pts: np.ndarray  # (K, 2)
    colour: Colour
    width: float
    cls: int | None = None
    closed: bool = False


@dataclass(frozen=True)
class Clip:
    """Image-only ops whose paint is kept only inside the `region` polygon."""

    region: np.ndarray  # (K, 2)
    ops: tuple["Poly | Stroke", ...]


Op = Union[Poly, Stroke, Clip]


def transform(op: Op, fn) -> Op:
    """Apply a pointwise function (K, 2) -> (K, 2) (each output row depends only on the same
    input row, e.g. a rotation) to every point of an op."""
    return transform_all([op], fn)[0]


def mirror_op(op: Op, cx: float = 0.5) -> Op:
    """The op flipped left-right about x = cx."""
    return transform(op, lambda q: q * (-1.0, 1.0) + (2.0 * cx, 0.0))


def transform_all(ops: Sequence[Op], fn) -> list[Op]:
    """Apply one pointwise function to all points of many ops in a single call (fast for rigid
    transforms of whole parts)."""
    arrays: list[np.ndarray] = []

    def collect(op: Op) -> None:
        if isinstance(op, Clip):
            arrays.append(op.region)
            for o in op.ops:
                collect(o)
        else:
            arrays.append(op.pts)

    for op in ops:
        collect(op)
    if not arrays:
        return list(ops)
    moved = fn(np.concatenate(arrays))
    pos = 0

    def take(n: int) -> np.ndarray:
        nonlocal pos
        pos += n
        return moved[pos - n:pos]

    def rebuild(op: Op) -> Op:
        if isinstance(op, Poly):
            return Poly(take(len(op.pts)), op.fill, op.cls, op.outline, op.width)
        if isinstance(op, Stroke):
            return Stroke(take(len(op.pts)), op.colour, op.width, op.cls, op.closed)
        region = take(len(op.region))
        return Clip(region, tuple(rebuild(o) for o in op.ops))  # type: ignore[misc]

    return [rebuild(op) for op in ops]


# ---- painters --------------------------------------------------------------------------------
def _xy(pts: np.ndarray, scale: float, ox: float = 0.0, oy: float = 0.0) -> list[float]:
    # Pixel centres sit at integer coordinates in Pillow: unit u -> u * scale - 0.5.
    q = pts * scale - (0.5 + ox, 0.5 + oy)
    return q.ravel().tolist()


def _paint(im: Image.Image, ops: Sequence[Op], scale: float, min_w: float,
           ox: float = 0.0, oy: float = 0.0) -> None:
    draw = ImageDraw.Draw(im)
    blend = None
    for op in ops:
        if isinstance(op, Poly):
            xy = _xy(op.pts, scale, ox, oy)
            if op.fill is not None and len(op.fill) == 4:
                blend = blend or ImageDraw.Draw(im, "RGBA")
                blend.polygon(xy, fill=op.fill)
                if op.outline is not None:
                    draw.polygon(xy, outline=op.outline, width=_w(op.width, scale, min_w))
            elif op.outline is not None:
                draw.polygon(xy, fill=op.fill, outline=op.outline,
                             width=_w(op.width, scale, min_w))
            elif op.fill is not None:
                draw.polygon(xy, fill=op.fill)
        elif isinstance(op, Stroke):
            xy = _xy(op.pts, scale, ox, oy)
            if op.closed:
                xy = xy + xy[:4]
            w = _w(op.width, scale, min_w)
            if len(op.colour) == 4:
                blend = blend or ImageDraw.Draw(im, "RGBA")
                blend.line(xy, fill=op.colour, width=w, joint="curve")
            else:
                draw.line(xy, fill=op.colour, width=w, joint="curve")
        else:
            _paint_clip(im, op, scale, min_w, ox, oy)


def _paint_clip(im: Image.Image, op: Clip, scale: float, min_w: float, ox: float,
                oy: float) -> None:
    q = op.region * scale - (0.5 + ox, 0.5 + oy)
    x0, y0 = (max(0, int(np.floor(v)) - 1) for v in q.min(axis=0))
    x1 = min(im.width, int(np.ceil(q[:, 0].max())) + 2)
    y1 = min(im.height, int(np.ceil(q[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    sub = im.crop((x0, y0, x1, y1))
    _paint(sub, op.ops, scale, min_w, ox + x0, oy + y0)
    keep = Image.new("L", sub.size, 0)
    ImageDraw.Draw(keep).polygon((q - (x0, y0)).ravel().tolist(), fill=255)
    im.paste(sub, (x0, y0), keep)


def _w(width: float, scale: float, min_w: float) -> int:
    return max(1, int(round(max(width * scale, min_w))))


def supersampling(size: int) -> int:
    """Canvas scale factor: small outputs get more samples per pixel (canvas >= 512 px)."""
    return int(min(4, max(2, -(-512 // size))))


def paint_image(ops: Sequence[Op], size: int, background: Colour) -> np.ndarray:
    """(size, size, 3) uint8: paint at `supersampling(size)` x, then box-filter down."""
    ss = supersampling(size)
    im = Image.new("RGB", (size * ss, size * ss), tuple(background[:3]))
    _paint(im, ops, float(size * ss), min_w=0.8 * ss)
    return np.asarray(im.reduce(ss))


def paint_mask(ops: Sequence[Op], size: int) -> np.ndarray:
    """(size, size) uint8 class ids, painted at output size without smoothing."""
    im = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(im)
    for op in ops:
        if isinstance(op, Clip) or op.cls is None:
            continue
        xy = _xy(op.pts, float(size))
        if isinstance(op, Poly):
            draw.polygon(xy, fill=op.cls)
        else:
            if op.closed:
                xy = xy + xy[:4]
            draw.line(xy, fill=op.cls, width=max(1, int(round(op.width * size))), joint="curve")
    return np.asarray(im)
