"""The toon engine's parameter space: named palettes, option lists and the fixed schema.

Continuous parameters are slider values (multipliers around 1, offsets in image heights, or
angles in degrees); discrete parameters are asset choices with snake_case labels. Range ends are
chosen so that their float32 value (vectors are stored as float32) stays inside the range.
`ToonParams` reads one array-form vector into named values for the drawing code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swiftavatar.engines.schema import (ContinuousParam, DiscreteParam, EngineSchema,
                                        InvalidVectorError, Prior)

RGB = tuple[int, int, int]

SKIN_TONES: dict[str, RGB] = {
    "porcelain": (255, 228, 212), "fair": (247, 213, 186), "light": (236, 194, 158),
    "medium": (222, 170, 128), "olive": (196, 152, 104), "tan": (192, 134, 92),
    "brown": (156, 102, 68), "dark": (116, 74, 50), "deep": (84, 54, 40),
}
HAIR_COLORS: dict[str, RGB] = {
    "black": (40, 34, 34), "dark_brown": (76, 48, 34), "brown": (118, 76, 44),
    "light_brown": (160, 114, 70), "auburn": (146, 60, 38), "ginger": (210, 110, 52),
    "blonde": (234, 198, 120), "platinum": (242, 232, 204), "grey": (162, 162, 168),
    "blue": (72, 112, 204), "pink": (238, 124, 172), "purple": (132, 84, 176),
}
EYE_COLORS: dict[str, RGB] = {
    "dark_brown": (62, 38, 26), "brown": (116, 72, 40), "hazel": (146, 112, 52),
    "green": (72, 132, 82), "blue": (72, 124, 194), "grey": (122, 134, 146),
}
CLOTH_COLORS: dict[str, RGB] = {
    "red": (214, 70, 66), "orange": (238, 142, 62), "yellow": (242, 202, 72),
    "green": (82, 162, 102), "teal": (42, 150, 150), "blue": (62, 112, 202),
    "navy": (42, 56, 102), "purple": (132, 92, 182), "pink": (236, 132, 172),
    "white": (242, 242, 240), "grey": (140, 142, 150), "black": (46, 46, 52),
}
GLASSES_COLORS: dict[str, RGB] = {
    "black": (32, 32, 38), "tortoise": (112, 62, 32), "gold": (204, 164, 72),
    "silver": (172, 176, 188), "red": (192, 42, 52), "blue": (52, 82, 172),
}
BACKGROUNDS: dict[str, RGB] = {
    "sky": (188, 220, 246), "mint": (194, 234, 212), "lavender": (220, 208, 246),
    "lemon": (250, 240, 178), "pink": (246, 178, 206), "teal": (150, 208, 210),
    "light_grey": (224, 224, 228), "slate": (72, 82, 104),
}

HAIR_STYLES = ("bald", "buzz", "short", "side_part", "quiff", "pixie", "bangs", "bob",
               "shoulder_length", "long_straight", "long_wavy", "curly", "afro", "ponytail",
               "bun", "mohawk")
EYE_STYLES = ("round", "almond", "narrow", "sleepy", "lashes", "dot")
BROW_STYLES = ("natural", "thin", "thick", "arched", "straight", "bushy")
NOSE_STYLES = ("button", "pointed", "round", "wide")
MOUTH_STYLES = ("smile", "grin", "neutral", "open", "smirk", "laugh")
FACIAL_HAIR = ("none", "stubble", "moustache", "goatee", "full_beard", "chin_strap")
GLASSES = ("none", "round", "rectangular", "browline", "cat_eye", "aviators", "sunglasses")
# Lenses the eyes show through (drawn as a light tint); the rest are opaque.
SEE_THROUGH_GLASSES = ("round", "rectangular", "browline", "cat_eye", "aviators")
HEADWEAR = ("none", "cap", "beanie", "headband", "beret", "bucket_hat")
EARRINGS = ("none", "studs", "hoops", "drops")
CHEEKS = ("none", "blush", "freckles")
CLOTHING = ("crew_tshirt", "v_neck", "hoodie", "collared_shirt", "turtleneck", "jacket")


def _d(name: str, options: tuple[str, ...], default: str, doc: str,
       role: str = "face") -> DiscreteParam:
    return DiscreteParam(name, tuple(options), options.index(default), doc, role)


SCHEMA = EngineSchema(
    engine="toon",
    version="1.0",
    supports_masks=True,
    continuous=(
        ContinuousParam("face_width", 0.85, 1.15, 1.0, "face width multiplier"),
        ContinuousParam("face_length", 0.875, 1.125, 1.0, "face length multiplier"),
        ContinuousParam("jaw_width", 0.55, 0.95, 0.75, "jaw width as a fraction of face width"),
        ContinuousParam("chin_length", 0.75, 1.25, 1.0, "chin length multiplier"),
        ContinuousParam("eye_size", 0.75, 1.3, 1.0, "eye size multiplier"),
        ContinuousParam("eye_spacing", 0.85, 1.15, 1.0, "distance between the eyes, multiplier"),
        ContinuousParam("eye_height", -0.02, 0.02, 0.0, "eye offset, image heights (+ lower)"),
        ContinuousParam("eye_tilt", -12.0, 12.0, 0.0, "degrees; + raises the outer corners"),
        ContinuousParam("brow_height", -0.02, 0.02, 0.0, "brow offset, image heights (+ higher)"),
        ContinuousParam("brow_tilt", -15.0, 15.0, 0.0, "degrees; + raises the outer ends"),
        ContinuousParam("brow_thickness", 0.6, 1.5, 1.0, "brow thickness multiplier"),
        ContinuousParam("nose_size", 0.75, 1.4, 1.0, "nose size multiplier"),
        ContinuousParam("mouth_width", 0.75, 1.3, 1.0, "mouth width multiplier"),
        ContinuousParam("mouth_curve", -1.0, 1.0, 0.4, "-1 frown .. +1 broad smile"),
        ContinuousParam("lip_thickness", 0.6, 1.5, 1.0, "lip thickness multiplier"),
        ContinuousParam("ear_size", 0.8, 1.25, 1.0, "ear size multiplier"),
        ContinuousParam("hair_volume", 0.8, 1.25, 1.0, "how far hair stands off the head"),
        ContinuousParam("head_tilt", -8.0, 8.0, 0.0, "head roll in degrees (+ clockwise)"),
    ),
    discrete=(
        _d("hair_style", HAIR_STYLES, "short", "hair asset"),
        _d("hair_color", tuple(HAIR_COLORS), "brown", "hair, brow and beard colour"),
        _d("skin_tone", tuple(SKIN_TONES), "light", "skin colour"),
        _d("eyes", EYE_STYLES, "almond", "eye shape"),
        _d("eye_color", tuple(EYE_COLORS), "brown", "iris colour"),
        _d("brows", BROW_STYLES, "natural", "eyebrow shape"),
        _d("nose", NOSE_STYLES, "button", "nose shape"),
        _d("mouth", MOUTH_STYLES, "smile", "mouth shape"),
        _d("facial_hair", FACIAL_HAIR, "none", "beard or moustache"),
        _d("glasses", GLASSES, "none", "eyewear; all but sunglasses show the eyes"),
        _d("glasses_color", tuple(GLASSES_COLORS), "black", "frame colour"),
        _d("headwear", HEADWEAR, "none", "hat, in the clothing colour"),
        _d("earrings", EARRINGS, "none", "earrings (hidden under long hair)"),
        _d("cheeks", CHEEKS, "none", "cheek decoration"),
        _d("clothing", CLOTHING, "crew_tshirt", "top", "style"),
        _d("clothing_color", tuple(CLOTH_COLORS), "blue", "top colour", "style"),
        _d("background", tuple(BACKGROUNDS), "sky", "flat background colour", "style"),
    ),
)

# An optional sampling prior closer to everyday selfies than the uniform default: bare heads,
# no glasses, clean-shaven faces and plain cheeks are each about as likely as all their
# alternatives together. Use it as `SCHEMA.sample(seed, ids, prior=EVERYDAY_PRIOR)`.
EVERYDAY_PRIOR = Prior(discrete_weights={
    "headwear": {"none": len(HEADWEAR) - 1.0},
    "glasses": {"none": len(GLASSES) - 1.0},
    "facial_hair": {"none": len(FACIAL_HAIR) - 1.0},
    "earrings": {"none": len(EARRINGS) - 1.0},
    "cheeks": {"none": len(CHEEKS) - 1.0},
})

_C_NAMES = tuple(p.name for p in SCHEMA.continuous)
_D_PARAMS = SCHEMA.discrete


@dataclass(frozen=True)
class ToonParams:
    """One vector with named access: `c` continuous values, `d` option labels."""

    c: dict[str, float]
    d: dict[str, str]

    @classmethod
    def read(cls, continuous: np.ndarray, discrete: np.ndarray) -> "ToonParams":
        for what, values, n in (("continuous", continuous, len(_C_NAMES)),
                                 ("discrete", discrete, len(_D_PARAMS))):
            if np.shape(values) != (n,):
                raise InvalidVectorError(f"a toon vector has {n} {what} values, got an array "
                                         f"of shape {np.shape(values)}")
        return cls(dict(zip(_C_NAMES, continuous.astype(np.float64).tolist())),
                   {p.name: p.options[int(k)] for p, k in zip(_D_PARAMS, discrete.tolist())})
