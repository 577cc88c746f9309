"""The designer for the `avataaars` engine (python-avatars art): face record -> avatar vector.

Every parameter is an asset or palette choice. Hair maps by a table from (style, fringe) to the
closest `top` (length first, then texture and fringe); a beanie becomes the cuffed winter hat
(hats replace the hair in this art). Skin, hair, clothing and background colours go to the
nearest palette entry in CIELAB, leaving out the cartoon colours (orange and yellow skin, pink
hair). The mouth follows the smile; expressions with no counterpart in a photo (winks, hearts,
eye-rolls) are never used.
"""
from __future__ import annotations

from typing import Any, Sequence

from swiftavatar.engines.schema import EngineSchema, VectorBatch
from swiftavatar.evaluation.designer import (BACKGROUND_KIND_RGB, check_engine, nearest_colour,
                                             pick, vectors_from_rows)
from swiftavatar.faces.attributes import FaceAttributes

# python-avatars 1.4.1 palette values (the engine pins that release), by option label.
SKIN_COLORS = {"tanned": "#FD9841", "yellow": "#F8D25C", "pale": "#FFDBB4", "light": "#EDB98A",
               "brown": "#D08B5B", "dark_brown": "#AE5D29", "black": "#614335"}
HAIR_COLORS = {"auburn": "#A55728", "black": "#2C1B18", "blonde": "#B58143",
               "blonde_golden": "#D6B370", "brown": "#724133", "brown_dark": "#4A312C",
               "pastel_pink": "#F59797", "platinum": "#ECDCBF", "red": "#C93305",
               "silver_gray": "#E8E1E1"}
CLOTHING_COLORS = {"black": "#262E33", "blue_01": "#65C9FF", "blue_02": "#5199E4",
                   "blue_03": "#25557C", "gray_01": "#E6E6E6", "gray_02": "#929598",
                   "heather": "#3C4F5C", "pastel_blue": "#B1E2FF", "pastel_green": "#A7FFC4",
                   "pastel_orange": "#FFDEB5", "pastel_yellow": "#FFFFB1", "pink": "#FF488E",
                   "red": "#FF5C5C", "white": "#FFFFFF"}
CARTOON_SKIN = ("tanned", "yellow")
CARTOON_HAIR = ("pastel_pink",)

# (face hair_style, bangs) -> top. Close crops to their namesakes; short hair with a fringe to
# `pixie`; the mid-length bob to `bob` (`mia_wallace` when it has a fringe); medium curls to
# `curly`; long straight hair to `straight_1` and long waves to `curvy` (no long fringed asset:
# length is the more visible trait); tied-back hair (no ponytail asset) to `bun`.
_TOP = {"bald": "no_hair", "buzz": "buzzcut", "short": "short_flat",
        "side_part": "caesar_side_part", "curly": "curly", "afro": "fro", "bob": "bob",
        "long_straight": "straight_1", "long_wavy": "curvy", "ponytail": "bun", "bun": "bun"}
TOP: dict[tuple[str, bool], str] = {(s, b): t for s, t in _TOP.items() for b in (False, True)}
TOP.update({("short", True): "pixie", ("bob", True): "mia_wallace"})
HEADWEAR_TOP = {"beanie": "hat_winter_hat_3"}   # a knitted hat with a cuff

ACCESSORY = {"none": "none", "round": "round", "rectangular": "prescription_2",
             "browline": "prescription_2", "sunglasses": "sunglasses"}
FACIAL_HAIR = {"none": "none", "stubble": "beard_light", "moustache": "moustache_magnum",
               "goatee": "beard_light", "full_beard": "beard_medium"}
CLOTHING = {"crew_tshirt": "shirt_crew_neck", "v_neck": "shirt_v_neck"}
TEETH_SMILE = 0.72     # the face model opens the mouth (teeth show) above this smile
CLOSED_SMILE = 0.4     # corners visibly lifted


def _mouth(smile: float) -> str:
    if smile > TEETH_SMILE:
        return "smile"          # open, teeth showing
    return "twinkle" if smile >= CLOSED_SMILE else "serious"


def avataaars_row(a: FaceAttributes) -> dict[str, Any]:
    """{parameter: option label} for one face."""
    hair = nearest_colour(a.hair_rgb, HAIR_COLORS, exclude=CARTOON_HAIR)
    if a.headwear == "none":
        top = pick(TOP, (a.hair_style, bool(a.bangs)), "hair_style/bangs")
    else:
        top = pick(HEADWEAR_TOP, a.headwear, "headwear")
    return {
        "top": top,
        "eyebrows": "default_natural",
        "eyes": "default",
        "nose": "wide" if a.nose_size >= 0.75 else ("small" if a.nose_size < 0.2 else "default"),
        "mouth": _mouth(a.smile),
        "facial_hair": pick(FACIAL_HAIR, a.facial_hair, "facial_hair"),
        "accessory": pick(ACCESSORY, a.glasses, "glasses"),
        "clothing": pick(CLOTHING, a.clothing, "clothing"),
        "clothing_graphic": "none",
        "skin_color": nearest_colour(a.skin_rgb, SKIN_COLORS, exclude=CARTOON_SKIN),
        "hair_color": hair,
        "facial_hair_color": hair,
        "clothing_color": nearest_colour(a.cloth_rgb, CLOTHING_COLORS),
        "background_color": nearest_colour(
            pick(BACKGROUND_KIND_RGB, a.background, "background"), CLOTHING_COLORS),
    }


def avataaars_designer(attrs: Sequence[FaceAttributes], schema: EngineSchema) -> VectorBatch:
    """Designer vectors (N rows) for the avataaars engine."""
    check_engine(schema, "avataaars")
    return vectors_from_rows(schema, [avataaars_row(a) for a in attrs])


__all__ = ["TOP", "avataaars_designer", "avataaars_row"]
