"""`toon`: the project's own parametric avatar engine (continuous sliders + discrete assets).

It plays the role of the paper's TikTok engine: 18 continuous parameters (face shape, feature
size and placement, expression, head roll) and 17 discrete ones (hair style and colour, skin
tone, eyes, brows, nose, mouth, facial hair, glasses, headwear, earrings, clothing,
background, ...). Each avatar is a frontal head-and-shoulders bust on a flat background with
the eyes near 44% of the height, like an aligned face crop.

Rendering is vector drawing with Pillow: a scene of polygons and strokes is painted in colour
on a supersampled canvas (smooth edges) and as class ids at the output size (the 13-class mask
of `swiftavatar.semantics`), so image and mask come from one geometry. It is deterministic and
runs a few hundred 256 px avatars per second on one core.
"""
from __future__ import annotations

import numpy as np

from swiftavatar import semantics as sem
from swiftavatar.engines.base import Engine, RenderOutput
from swiftavatar.engines.schema import EngineSchema, Prior, VectorBatch
from swiftavatar.engines.toon_canvas import Clip, Op, Poly, paint_image, paint_mask, transform_all
from swiftavatar.engines.toon_eyes import brow_ops, eye_ops
from swiftavatar.engines.toon_face import (build_head, cheek_ops, ear_ops, earring_ops, face_ops,
                                           mouth_ops, neck_ops, nose_ops)
from swiftavatar.engines.toon_hair import facial_hair_ops, hair_ops
from swiftavatar.engines.toon_schema import (BACKGROUNDS, CLOTH_COLORS, EYE_COLORS, GLASSES_COLORS,
                                             EVERYDAY_PRIOR, HAIR_COLORS, SCHEMA,
                                             SEE_THROUGH_GLASSES, ToonParams)
from swiftavatar.engines.toon_wear import clothing_ops, glasses_ops, headwear_ops

CROWN_HATS = ("cap", "beanie", "beret", "bucket_hat")  # they hide buns, crests and quiffs


def build_scene(p: ToonParams) -> tuple[tuple[int, int, int], list[Op]]:
    """(background colour, draw ops in painter's order) for one avatar."""
    c, d = p.c, p.d
    h = build_head(p)
    hair_rgb = HAIR_COLORS[d["hair_color"]]
    cloth_rgb = CLOTH_COLORS[d["clothing_color"]]
    hair = hair_ops(h, d["hair_style"], hair_rgb, c["hair_volume"], d["headwear"] in CROWN_HATS)
    beard, tache = facial_hair_ops(h, d["facial_hair"], hair_rgb)
    arms, lenses = glasses_ops(h, d["glasses"], GLASSES_COLORS[d["glasses_color"]], c["eye_size"])

    head: list[Op] = []  # drawn upright, then rolled by head_tilt
    if not hair.covers_ears:
        head += ear_ops(h, c["ear_size"]) + earring_ops(h, d["earrings"], c["ear_size"])
    head += face_ops(h)
    if hair.front_region is not None:  # the fringe's shadow on the forehead
        head.append(Clip(h.upper_face(h.eye_y + 0.01),
                         (Poly(hair.front_region + (0.004, 0.014), h.skin_shade),)))
    head += cheek_ops(h, d["cheeks"])
    head += nose_ops(h, d["nose"], c["nose_size"])
    head += beard + mouth_ops(h, d["mouth"], c["mouth_curve"], c["lip_thickness"]) + tache
    eyes = eye_ops(h, d["eyes"], EYE_COLORS[d["eye_color"]], c["eye_tilt"])
    head += eyes
    head += brow_ops(h, d["brows"], hair_rgb, c["brow_tilt"], c["brow_height"],
                     c["brow_thickness"])
    head += arms + hair.front + lenses
    if d["glasses"] in SEE_THROUGH_GLASSES:  # eyes seen through a lens keep their class
        head += [Poly(o.pts, None, sem.EYES) for o in eyes
                 if isinstance(o, Poly) and o.cls == sem.EYES]
    head += headwear_ops(h, d["headwear"], cloth_rgb, hair.top, hair.side)

    chin_shadow = h.rot(h.lower_face(h.jaw_y - 0.06)) + (0.0, 0.04)
    n_back = len(hair.back)
    rolled = transform_all(hair.back + head, h.rot) if h.tilt else hair.back + head
    ops: list[Op] = rolled[:n_back]
    ops += neck_ops(h) + clothing_ops(h, d["clothing"], cloth_rgb, chin_shadow)
    ops += rolled[n_back:]
    return BACKGROUNDS[d["background"]], ops


class ToonEngine(Engine):
    """The built-in stylized avatar engine; renders images and 13-class masks."""

    name = "toon"
    default_size = 256

    @property
    def schema(self) -> EngineSchema:
        return SCHEMA

    def suggested_prior(self) -> Prior:
        return EVERYDAY_PRIOR

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        n = len(batch)
        images = np.empty((n, size, size, 3), np.uint8)  # (N, H, W, 3)
        masks = np.empty((n, size, size), np.uint8)  # (N, H, W)
        for i in range(n):
            bg, ops = build_scene(ToonParams.read(batch.continuous[i], batch.discrete[i]))
            images[i] = paint_image(ops, size, bg)
            masks[i] = paint_mask(ops, size)
        return RenderOutput(images, masks)


__all__ = ["SCHEMA", "ToonEngine", "build_scene"]
