"""Domain randomisation of the procedural faces (sim-to-real): the opt-in preset
`FaceDomainConfig.randomised()` widens light, colour, camera, people and scenes so that a model
trained on the faces meets real photos inside its training range.

On top of the default domain's draws (left untouched), face i of a seed draws its randomised
factors from a second stream `default_rng([seed, i, RANDOMISE_TAG])`, in a fixed order, so a
face stays a function of (seed, i) alone: the same alone or in any batch, in any process.
What it randomises: skin tones over ten categories (a Monk-scale-like ladder, recorded per
face), every hair and eye colour alike (grey, platinum and red hair as often as dark), one to
three lights of any colour temperature and hardness, white balance, camera colour casts,
exposure and gamma, wild backdrops (any-hue gradients, textures, blurred shapes), partial
occluders (a hand, a microphone, a hair strand), and stronger noise, blur and JPEG.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from swiftavatar.faces.attributes import (EYE_COLORS, HAIR_COLORS, SKIN_TONES, FaceAttributes,
                                          RGB)
from swiftavatar.faces.config import FaceDomainConfig, _check_prob, _check_range
from swiftavatar.faces.occlusion import Occluder, sample_occluder

RANDOMISE_TAG = 0x5A17        # names the second random stream of a face

# Ten skin-tone categories, lightest to darkest, as the average appearance (sRGB) of skin in a
# well-lit photo: the default domain's eight named tones plus a lighter and a darker end, one
# category per step as on the Monk Skin Tone scale's ten.
MONK_APPEARANCE: tuple[RGB, ...] = (
    (248, 226, 212), (238, 206, 186), (226, 182, 153), (204, 150, 116), (176, 130, 92),
    (150, 102, 70), (112, 74, 52), (84, 54, 40), (62, 40, 30), (44, 29, 23))


@dataclass(frozen=True)
class RandomisedFaceConfig(FaceDomainConfig):
    """The randomised domain: FaceDomainConfig's fields (with wider ranges, see
    `randomised_config`) plus the factors the default domain keeps fixed."""

    n_lights: tuple[int, int] = (1, 3)                  # key light plus up to two more
    light_hardness: tuple[float, float] = (0.15, 1.0)   # 1 hard key .. 0 all diffuse
    white_balance_range: tuple[float, float] = (0.0, 1.0)   # per face (the default: fixed)
    cast: float = 0.15                 # camera channel gains in [1 - cast, 1 + cast]
    gamma: tuple[float, float] = (0.8, 1.25)            # exponent on the sRGB image
    p_wild_backdrop: float = 0.6       # share of faces in front of a wild backdrop
    p_occluder: float = 0.3            # share of faces partly hidden by an occluder

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self.n_lights
        if not (1 <= lo <= hi <= 3):
            raise ValueError(f"RandomisedFaceConfig.n_lights: need 1 <= lo <= hi <= 3, "
                             f"got {self.n_lights}")
        _check_range("light_hardness", self.light_hardness, 0.0, 1.0)
        _check_range("white_balance_range", self.white_balance_range, 0.0, 1.0)
        _check_range("gamma", self.gamma, 0.5, 2.0)
        if not 0.0 <= self.cast < 0.5:
            raise ValueError(f"RandomisedFaceConfig.cast: in [0, 0.5), got {self.cast}")
        _check_prob("p_wild_backdrop", self.p_wild_backdrop)
        _check_prob("p_occluder", self.p_occluder)


def randomised_config(**overrides) -> RandomisedFaceConfig:
    """The preset: the default domain's ranges widened (light from the side, below and behind,
    2200-11000 K, soft to harsh, under- and over-exposure, more noise, blur and JPEG, a little
    more head pose), wide enough to hold the evaluation's shifted conditions."""
    base = RandomisedFaceConfig(
        yaw_deg=(-24.0, 24.0), roll_deg=(-14.0, 14.0),
        light_azimuth_deg=(-90.0, 90.0), light_elevation_deg=(-30.0, 75.0),
        light_kelvin=(2200.0, 11000.0), light_intensity=(0.6, 1.6), ambient=(0.05, 0.9),
        exposure=(0.6, 1.6), blur_sigma=(0.0, 0.012), noise_std=(0.002, 0.06),
        jpeg_quality=(20, 95))
    return dataclasses.replace(base, **overrides)


@dataclass(frozen=True)
class WildPlan:
    """What the renderer needs beyond the record: the extra lights (azimuth deg, elevation deg,
    kelvin, intensity), the backdrop's seed (None: the default scene) and the occluder."""

    extra_lights: tuple[tuple[float, float, float, float], ...]
    backdrop_seed: int | None
    occluder: Occluder | None


def _skin(rng: np.random.Generator) -> tuple[int, RGB, str]:
    """(category 1-10, sRGB appearance, nearest named tone of the default domain)."""
    monk = int(rng.integers(1, len(MONK_APPEARANCE) + 1))
    t = float(np.clip(monk - 1 + rng.uniform(-0.45, 0.45), 0, len(MONK_APPEARANCE) - 1))
    k = min(int(t), len(MONK_APPEARANCE) - 2)
    pal = np.asarray(MONK_APPEARANCE, np.float64)
    rgb = pal[k] + (t - k) * (pal[k + 1] - pal[k])
    rgb = rgb * (1 + rng.uniform(-0.04, 0.04, 3))           # undertone: redder / yellower
    rgb_t: RGB = tuple(int(v) for v in np.clip(np.round(rgb), 0, 255))
    names = list(SKIN_TONES)
    dist = [float(np.sum((np.asarray(SKIN_TONES[n]) - rgb) ** 2)) for n in names]
    return monk, rgb_t, names[int(np.argmin(dist))]


def _colour(rng: np.random.Generator, palette: dict[str, RGB], amount: float) -> tuple[str, RGB]:
    name = list(palette)[int(rng.integers(len(palette)))]
    f = 1.0 + rng.uniform(-amount, amount) + rng.uniform(-amount / 3, amount / 3, size=3)
    return name, tuple(int(v) for v in np.clip(np.round(np.asarray(palette[name]) * f), 0, 255))


def randomise(att: FaceAttributes, seed: int, i: int,
              cfg: RandomisedFaceConfig) -> tuple[FaceAttributes, WildPlan]:
    """Face i's randomised record and render plan (no rendering: `face_attributes` uses it)."""
    rng = np.random.default_rng([int(seed), int(i), RANDOMISE_TAG])
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    monk, skin_rgb, tone = _skin(rng)
    hair_color, hair_rgb = _colour(rng, HAIR_COLORS, 0.1)
    eye_color, eye_rgb = _colour(rng, EYE_COLORS, 0.1)
    n_lights = int(rng.integers(cfg.n_lights[0], cfg.n_lights[1] + 1))
    hardness = u(cfg.light_hardness)
    extra = tuple((u((-90.0, 90.0)), u((-30.0, 75.0)), u(cfg.light_kelvin),
                   att.light_intensity * u((0.25, 0.8))) for _ in range(2))[:n_lights - 1]
    wb = u(cfg.white_balance_range)
    cast = tuple(float(g) for g in rng.uniform(1 - cfg.cast, 1 + cfg.cast, 3))
    gamma = u(cfg.gamma)
    wild_bg = bool(rng.random() < cfg.p_wild_backdrop)
    backdrop_seed = int(rng.integers(2 ** 31))
    occluded = bool(rng.random() < cfg.p_occluder)      # last: the occluder's own draws follow
    occ = sample_occluder(rng, skin_rgb, hair_rgb) if occluded else None
    att = dataclasses.replace(
        att, skin_tone=tone, skin_rgb=skin_rgb, hair_color=hair_color, hair_rgb=hair_rgb,
        eye_color=eye_color, eye_rgb=eye_rgb, monk_tone=monk, n_lights=n_lights,
        light_hardness=hardness, white_balance=wb, cast_rgb=cast, gamma=gamma,
        backdrop="wild" if wild_bg else "scene", occluder=occ.kind if occ else "none")
    return att, WildPlan(extra_lights=extra, backdrop_seed=backdrop_seed if wild_bg else None,
                         occluder=occ)


__all__ = ["MONK_APPEARANCE", "RANDOMISE_TAG", "RandomisedFaceConfig", "WildPlan", "randomise",
           "randomised_config"]
