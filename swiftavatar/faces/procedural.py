"""The built-in realistic face domain: procedural photo-like aligned face crops with 13-class
masks (the offline stand-in for CelebAMask-HQ).

Face i of a seed depends only on (seed, i): it is drawn from `np.random.default_rng([seed, i])`,
so a face renders the same alone or in any batch, in any process.

Training code uses `face_images` (or a FaceBatch's images/masks). `FaceBatch.attributes` and
`face_attributes` are the ground truth for *evaluation only*; no training code may read them.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from swiftavatar.faces.accessories import paint_beanie, paint_earrings, paint_glasses
from swiftavatar.faces.attributes import FaceAttributes, sample_attributes
from swiftavatar.faces.backdrop import paint_backdrop
from swiftavatar.faces.camera import Grid, develop, head_grid
from swiftavatar.faces.config import FaceDomainConfig
from swiftavatar.faces.features import paint_brows, paint_eyes, paint_mouth, paint_nose
from swiftavatar.faces.hair import paint_facial_hair, paint_hair, paint_hair_back
from swiftavatar.faces.head import paint_ears, paint_face, paint_neck
from swiftavatar.faces.layout import Canvas, Layout, make_layout
from swiftavatar.faces.lighting import render_lit, scene_lights
from swiftavatar.faces.occlusion import paint_occluder
from swiftavatar.faces.randomise import RandomisedFaceConfig, WildPlan, randomise
from swiftavatar.faces.scene import paint_background, paint_cloth
from swiftavatar.faces.shading import Light, linear_to_srgb, luminance, tonemap
from swiftavatar.semantics import SKIN


@dataclass(frozen=True)
class FaceBatch:
    """Rendered faces. `attributes` is evaluation-only ground truth (never a training input)."""

    images: np.ndarray                    # (N, H, W, 3) uint8 RGB
    masks: np.ndarray                     # (N, H, W) uint8, class ids of swiftavatar.semantics
    attributes: list[FaceAttributes]      # one record per face
    seed: int
    ids: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _check_ids(seed: int, ids: Sequence[int]) -> tuple[int, ...]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
            raise ValueError(f"face ids must be non-negative ints, got {i!r}")
        out.append(int(i))
    return tuple(out)


def _config(size: int | None, config: FaceDomainConfig | None) -> FaceDomainConfig:
    cfg = config or FaceDomainConfig()
    return cfg if size is None or int(size) == cfg.size else cfg.with_size(int(size))


def _develop_exposure(cv: Canvas, att: FaceAttributes, wb: float,
                      gains: tuple[float, float, float] | None = None,
                      gamma: float | None = None) -> np.ndarray:
    """Camera metering on the face, partial white balance, tone curve: linear -> sRGB [0, 1].
    `gains` (a colour cast of the camera) and `gamma` only in the randomised domain."""
    skin = cv.mask == SKIN
    if skin.sum() < 4:
        skin = np.ones_like(skin)
    lit = float(luminance(cv.rgb[skin]).mean())
    ref = float(luminance(cv.info["skin_albedo"][skin]).mean())
    gain = att.exposure * ref / max(lit, 1e-6)
    irr = cv.info["irradiance"][skin].mean(0)          # the light falling on the face
    cast = irr / float(luminance(irr))
    rgb = cv.rgb * gain / cast ** wb
    if gains is not None:
        rgb = rgb * np.asarray(gains, np.float32)
    out = linear_to_srgb(tonemap(rgb))
    return out if gamma is None else np.power(out, np.float32(gamma))


def _paint_scene(grid: Grid, light: Light, lay: Layout, att: FaceAttributes,
                 rng: np.random.Generator, plan: WildPlan | None = None,
                 first: bool = True) -> Canvas:
    """Every part of the face under `light`, back to front. With a randomised `plan`, a pass
    that is not the `first` paints the background black (it adds only light, see lighting)."""
    cv = Canvas.blank(grid, light)
    paint_background(cv, att, rng)
    if plan is not None and plan.backdrop_seed is not None:
        paint_backdrop(cv, att.background, np.random.default_rng(plan.backdrop_seed))
    if not first:
        cv.rgb[:] = 0.0
    paint_hair_back(cv, lay, att, rng)
    paint_neck(cv, lay, att, rng)
    paint_cloth(cv, lay, att, rng)
    paint_ears(cv, lay, att)
    paint_face(cv, lay, att, rng)
    paint_nose(cv, lay, att)
    paint_mouth(cv, lay, att, rng)
    paint_facial_hair(cv, lay, att, rng)
    paint_eyes(cv, lay, att, rng)
    paint_brows(cv, lay, att, rng)
    paint_hair(cv, lay, att, rng)
    paint_earrings(cv, lay, att, rng)
    paint_beanie(cv, lay, att, rng)
    paint_glasses(cv, lay, att, rng)
    if plan is not None and plan.occluder is not None:
        paint_occluder(cv, plan.occluder)
    return cv


def _render_one(seed: int, i: int, cfg: FaceDomainConfig) -> tuple[np.ndarray, np.ndarray,
                                                                    FaceAttributes]:
    rng = np.random.default_rng([seed, i])
    att = sample_attributes(rng, cfg)     # first: `face_attributes` replays just this part
    plan = None
    if isinstance(cfg, RandomisedFaceConfig):
        att, plan = randomise(att, seed, i, cfg)
    lay = make_layout(att)
    grid = head_grid(cfg.size, att.head_roll_deg, att.head_scale, att.head_shift)
    if plan is None:
        light = Light.from_angles(att.light_azimuth_deg, att.light_elevation_deg,
                                  att.light_kelvin, att.light_intensity, att.ambient)
        cv = _paint_scene(grid, light, lay, att, rng)
        srgb = _develop_exposure(cv, att, cfg.white_balance)
    else:
        state = copy.deepcopy(rng.bit_generator.state)

        def paint(light: Light, first: bool) -> Canvas:
            rng.bit_generator.state = copy.deepcopy(state)   # the same face in every pass
            return _paint_scene(grid, light, lay, att, rng, plan, first)

        cv = render_lit(paint, scene_lights(att, plan.extra_lights))
        srgb = _develop_exposure(cv, att, att.white_balance, att.cast_rgb, att.gamma)
    img = develop(srgb, blur_sigma=att.blur_sigma, noise_std=att.noise_std,
                  jpeg_quality=att.jpeg_quality, rng=rng)
    assert img.shape == (cfg.size, cfg.size, 3) and cv.mask.shape == (cfg.size, cfg.size)
    return img, cv.mask, att


def render_faces(seed: int, ids: Sequence[int], size: int | None = None,
                 config: FaceDomainConfig | None = None) -> FaceBatch:
    """Render faces `ids` of `seed` at `size` px (default: config.size, 64).

    Returns images (N, H, W, 3) uint8, masks (N, H, W) uint8 and the attribute records
    (evaluation only)."""
    cfg = _config(size, config)
    ids_t = _check_ids(seed, ids)
    n = cfg.size
    images = np.zeros((len(ids_t), n, n, 3), np.uint8)
    masks = np.zeros((len(ids_t), n, n), np.uint8)
    records = []
    for k, i in enumerate(ids_t):
        images[k], masks[k], att = _render_one(int(seed), i, cfg)
        records.append(att)
    return FaceBatch(images=images, masks=masks, attributes=records, seed=int(seed), ids=ids_t)


def face_images(seed: int, ids: Sequence[int], size: int | None = None,
                config: FaceDomainConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What training sees: images (N, H, W, 3) uint8 and masks (N, H, W) uint8, no records."""
    b = render_faces(seed, ids, size, config)
    return b.images, b.masks


def face_attributes(seed: int, ids: Sequence[int],
                    config: FaceDomainConfig | None = None) -> list[FaceAttributes]:
    """The records of faces `ids` without rendering them (evaluation only)."""
    cfg = config or FaceDomainConfig()
    ids_t = _check_ids(seed, ids)
    out = [sample_attributes(np.random.default_rng([int(seed), i]), cfg) for i in ids_t]
    if isinstance(cfg, RandomisedFaceConfig):
        out = [randomise(att, int(seed), i, cfg)[0] for att, i in zip(out, ids_t)]
    return out


def contact_sheet(seed: int = 0, n: int = 16, size: int = 128, ncols: int = 8,
                  config: FaceDomainConfig | None = None) -> np.ndarray:
    """(H, W, 3) uint8 grid of face | colourised-mask pairs, `ncols` tiles per row."""
    from swiftavatar.semantics import colorize
    from swiftavatar.viz import grid
    b = render_faces(seed, range(n), size, config)
    tiles = np.stack([t for k in range(n) for t in (b.images[k], colorize(b.masks[k]))])
    return grid(tiles.astype(np.uint8), ncols=ncols)


__all__ = ["FaceBatch", "contact_sheet", "face_attributes", "face_images", "render_faces"]
