"""Everything that is not the head: an out-of-focus background and the clothed shoulders."""
from __future__ import annotations

import numpy as np

from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.layout import Canvas, Layout
from swiftavatar.faces.shading import (F32, blur, coverage, dome, noise2d, normals, rgb255_linear,
                                       shade, upsample)
from swiftavatar.semantics import BACKGROUND, CLOTH

# sRGB base colours per background kind (walls, foliage, sky, studio paper)
_BG_PALETTES = {
    "studio": [(200, 200, 198), (120, 124, 130), (60, 64, 72), (170, 186, 200), (214, 204, 186),
               (90, 110, 140), (40, 40, 44)],
    "indoor": [(214, 200, 176), (180, 160, 130), (150, 140, 128), (200, 196, 188), (120, 96, 76),
               (176, 184, 176), (226, 220, 208)],
    "outdoor": [(120, 150, 90), (70, 100, 60), (170, 196, 220), (140, 170, 200), (196, 190, 160),
                (90, 120, 110), (210, 220, 226)],
}
_BOKEH_COLOURS = {
    "studio": [(255, 255, 255), (200, 210, 230)],
    "indoor": [(255, 220, 160), (255, 200, 120), (240, 240, 230), (200, 160, 120)],
    "outdoor": [(240, 250, 220), (160, 200, 110), (255, 255, 240), (110, 150, 80)],
}


def paint_background(cv: Canvas, att: FaceAttributes, rng: np.random.Generator) -> None:
    """A blurred scene: a two-colour gradient, soft structure and bokeh discs."""
    full = cv.grid.size
    n = min(full, 64)            # it is out of focus: paint small, then enlarge
    s = (np.arange(n, dtype=F32) + 0.5) / n * 2 - 1
    sx, sy = np.meshgrid(s, s)                                   # screen coords, not head frame
    pal = _BG_PALETTES[att.background]
    c1, c2 = (rgb255_linear(np.asarray(pal[int(rng.integers(len(pal)))]) *
                            rng.uniform(0.8, 1.1, 3)) for _ in range(2))
    ang = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + 0.4 * (np.cos(ang) * sx + np.sin(ang) * sy), 0, 1)[..., None]
    img = c1 * (1 - t) + c2 * t
    img = img * (1 + 0.18 * noise2d(rng, n, 3)[..., None] + 0.06 * noise2d(rng, n, 9)[..., None])
    if att.background != "studio":                               # soft vertical structure
        for _ in range(int(rng.integers(0, 3))):
            x0, w = rng.uniform(-1, 1), rng.uniform(0.05, 0.3)
            band = np.clip((w - np.abs(sx - x0)) / (0.5 * w), 0, 1)[..., None]
            img = img * (1 - 0.3 * band) + band * 0.3 * img.mean((0, 1)) * rng.uniform(0.5, 1.6)
    kinds = _BOKEH_COLOURS[att.background]
    for _ in range(int(rng.integers(0, 4 if att.background == "studio" else 12))):
        bx, by, r = rng.uniform(-1, 1), rng.uniform(-1, 0.6), rng.uniform(0.04, 0.2)
        col = rgb255_linear(kinds[int(rng.integers(len(kinds)))])
        d = np.sqrt((sx - bx) ** 2 + (sy - by) ** 2)
        a = (rng.uniform(0.08, 0.45) * np.clip((r - d) / (0.25 * r), 0, 1))[..., None]
        img = img * (1 - a) + col * a
    img = blur(np.clip(img, 0, 1.5), 0.012 * n)
    vign = 1 - 0.25 * (sx ** 2 + sy ** 2)[..., None] * rng.uniform(0.2, 1)
    img = upsample((img * vign).astype(F32), full)
    grain = 1 + 0.015 * rng.standard_normal((full, full, 1)).astype(F32)   # fine texture
    cv.paint(np.ones((full, full), F32), img * grain, BACKGROUND)


def body_sdf(x: np.ndarray, y: np.ndarray, lay: Layout) -> np.ndarray:
    """Signed distance (approx.) to the shoulders-and-chest silhouette."""
    xs = x - 0.15 * lay.dx("chin")
    top = lay.shoulder_y + 0.14 * (xs / 0.6) ** 2 + 0.6 * np.maximum(np.abs(xs) - 0.8, 0) ** 2
    return ((top - y) / np.sqrt(1 + (0.47 * xs) ** 2)).astype(F32)


def paint_cloth(cv: Canvas, lay: Layout, att: FaceAttributes, rng: np.random.Generator) -> None:
    """Shoulders and chest, with a crew or V neckline showing the neck/chest skin (drawn
    before, as class neck) and soft fabric folds."""
    x, y, pix = cv.grid.x, cv.grid.y, cv.grid.pix
    xs = x - 0.15 * lay.dx("chin")
    body = body_sdf(x, y, lay)
    depth = rng.uniform(0.04, 0.22)
    half = lay.neck_w + rng.uniform(0.0, 0.08)
    y0 = lay.shoulder_y - 0.06
    if att.clothing == "crew_tshirt":   # crew / scoop: a half ellipse
        u, v = xs / half, np.maximum(y - y0, 0) / depth
        neckline = ((np.sqrt(u * u + v * v) - 1) * min(half, depth)).astype(F32)
    else:                    # V: the opening narrows linearly to a point
        frac = np.clip(1 - (y - y0) / depth, 0, 1)
        neckline = (np.abs(xs) - half * frac).astype(F32)
        neckline = np.where(y > y0 + depth, 1.0, neckline).astype(F32)
    sdf = np.maximum(body, -neckline).astype(F32)
    n_ = x.shape[0]
    folds = 0.05 * noise2d(rng, n_, 4) + 0.012 * noise2d(rng, n_, 14)
    h = dome(sdf, 0.3) + folds
    alb = rgb255_linear(att.cloth_rgb)
    fabric = 1 + 0.05 * rng.standard_normal((n_, n_)).astype(F32) + 0.05 * noise2d(rng, n_, 30)
    occ = np.clip(0.6 + (y - lay.shoulder_y) * 2.0, 0.6, 1.0)    # under the chin and hair
    col = shade(alb * fabric[..., None], normals(h, pix), cv.light, wrap=(0.1, 0.1, 0.1),
                spec=0.03, shininess=8.0, occlusion=occ)
    cv.paint(coverage(sdf, pix), col, CLOTH)
