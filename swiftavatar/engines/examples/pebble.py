"""`pebble`: the engine author's guide's example (docs/engines.md), small but complete.

A flat cartoon bust drawn with numpy: 4 continuous parameters (face width, eye size, eye
spacing, mouth width) and 5 discrete ones (skin tone, hair style, hair colour, glasses, and
the background colour as a style parameter). The face sits where the built-in face domain
puts it (eyes at 42% of the height, chin near 75%), and every pixel gets one of the 13
classes of `swiftavatar.semantics`, so the engine also returns masks. The image is the class
map painted in each avatar's colours at 2x and box-averaged down (smooth edges); the mask is
the class map at the output size.

    swiftavatar render --engine swiftavatar.engines.examples.pebble:PebbleEngine \
        --count 64 --out data/pebble
"""
from __future__ import annotations

import numpy as np

from swiftavatar import semantics as sem
from swiftavatar.engines.base import Engine, RenderOutput
from swiftavatar.engines.schema import (ContinuousParam, DiscreteParam, EngineSchema, Prior,
                                        VectorBatch)

TARGET = "swiftavatar.engines.examples.pebble:PebbleEngine"
SKIN = {"light": (240, 205, 180), "medium": (210, 160, 120), "tan": (170, 115, 80),
        "dark": (105, 70, 50)}
HAIR = {"black": (30, 25, 25), "brown": (100, 65, 40), "blonde": (225, 190, 110),
        "red": (170, 70, 35)}
BACKGROUND = {"sky": (170, 200, 230), "grey": (200, 200, 200), "sand": (225, 210, 180)}
FIXED_RGB = {sem.EYES: (35, 30, 30), sem.MOUTH: (175, 65, 75), sem.CLOTH: (70, 90, 140),
             sem.EYEGLASSES: (25, 25, 25)}
SUPERSAMPLE = 2

SCHEMA = EngineSchema(
    engine="pebble",
    version="1",                 # change it whenever the same vector renders other pixels
    continuous=(
        ContinuousParam("face_width", 0.36, 0.50, 0.43, "face half-width, half-sides"),
        ContinuousParam("eye_size", 0.035, 0.07, 0.05, "eye radius"),
        ContinuousParam("eye_spacing", 0.15, 0.24, 0.19, "eye centre to the midline"),
        ContinuousParam("mouth_width", 0.08, 0.18, 0.12, "mouth half-width"),
    ),
    discrete=(
        DiscreteParam("skin_tone", tuple(SKIN), 0, "skin colour"),
        DiscreteParam("hair_style", ("none", "short", "long"), 1, "hair shape"),
        DiscreteParam("hair_color", tuple(HAIR), 1, "hair colour"),
        DiscreteParam("glasses", ("none", "round"), 0, "round glasses or none"),
        DiscreteParam("background", tuple(BACKGROUND), 0, "flat background colour",
                      role="style"),
    ),
    supports_masks=True,
)


def class_map(c: np.ndarray, d: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 class ids for one vector: continuous values c (4,), option indices
    d (5,). Coordinates: x right, y down, 1 = half the side, pixel centres."""
    face_w, eye_r, eye_dx, mouth_w = (float(v) for v in c)
    style = SCHEMA.discrete[1].options[int(d[1])]
    glasses = SCHEMA.discrete[3].options[int(d[3])] == "round"
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    y, x = np.meshgrid(t, t, indexing="ij")                          # (S, S) each
    face_cy, face_h = -0.06, 0.56                                    # hairline -0.62, chin 0.5
    face = (x / face_w) ** 2 + ((y - face_cy) / face_h) ** 2 <= 1
    out = np.full((size, size), sem.BACKGROUND, np.uint8)            # painter's order below
    if style == "long":
        out[(np.abs(x) <= face_w + 0.12) & (y >= -0.5) & (y <= 0.45)] = sem.HAIR
    out[(x / 0.95) ** 2 + ((y - 1.25) / 0.55) ** 2 <= 1] = sem.CLOTH
    out[(np.abs(x) <= 0.45 * face_w) & (y >= 0.3) & (y <= 0.78)] = sem.NECK
    out[face] = sem.SKIN
    out[(x / 0.05) ** 2 + ((y - 0.08) / 0.07) ** 2 <= 1] = sem.NOSE
    out[(x / mouth_w) ** 2 + ((y - 0.28) / 0.03) ** 2 <= 1] = sem.MOUTH
    for side in (-1, 1):                                             # eyes at y = -0.16: 42%
        out[((x - side * eye_dx) / eye_r) ** 2 + ((y + 0.16) / (0.6 * eye_r)) ** 2 <= 1] = sem.EYES
    if style != "none":                                              # the crown and fringe
        crown = (x / (face_w + 0.06)) ** 2 + ((y - face_cy) / (face_h + 0.06)) ** 2 <= 1
        out[crown & (y <= -0.36) | crown & ~face & (y <= -0.1)] = sem.HAIR
    if glasses:
        for side in (-1, 1):
            r = np.hypot(x - side * eye_dx, y + 0.16)
            out[(r >= 1.7 * eye_r) & (r <= 1.7 * eye_r + 0.025)] = sem.EYEGLASSES
        out[(np.abs(x) <= eye_dx - 1.7 * eye_r) & (np.abs(y + 0.16) <= 0.012)] = sem.EYEGLASSES
    return out


def palette(d: np.ndarray) -> np.ndarray:
    """(13, 3) uint8: the colour of each class for one vector's option indices d (5,)."""
    skin = np.array(SKIN[SCHEMA.discrete[0].options[int(d[0])]], np.float32)
    pal = np.zeros((sem.NUM_CLASSES, 3), np.float32)
    pal[sem.BACKGROUND] = BACKGROUND[SCHEMA.discrete[4].options[int(d[4])]]
    pal[[sem.SKIN, sem.NECK, sem.NOSE]] = skin, 0.85 * skin, 0.9 * skin
    pal[sem.HAIR] = HAIR[SCHEMA.discrete[2].options[int(d[2])]]
    for cls, rgb in FIXED_RGB.items():
        pal[cls] = rgb
    return pal.round().astype(np.uint8)


class PebbleEngine(Engine):
    """The example engine: deterministic, batched, images and 13-class masks."""

    name = "pebble"
    default_size = 128

    @property
    def schema(self) -> EngineSchema:
        return SCHEMA

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        n, ss = len(batch), SUPERSAMPLE
        images = np.empty((n, size, size, 3), np.uint8)              # (N, S, S, 3)
        masks = np.empty((n, size, size), np.uint8)                  # (N, S, S)
        for i in range(n):
            c, d = batch.continuous[i], batch.discrete[i]
            big = palette(d)[class_map(c, d, size * ss)].astype(np.float32)  # (sS, sS, 3)
            images[i] = big.reshape(size, ss, size, ss, 3).mean((1, 3)).round().astype(np.uint8)
            masks[i] = class_map(c, d, size)
        return RenderOutput(images, masks)

    def suggested_prior(self) -> Prior:
        """Glasses on one avatar in four (uniform sampling would give one in two)."""
        return Prior(discrete_weights={"glasses": {"none": 3.0}})


__all__ = ["PebbleEngine", "SCHEMA", "TARGET", "class_map", "palette"]
