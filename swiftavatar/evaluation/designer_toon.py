"""The designer for the built-in `toon` engine: face attribute record -> toon avatar vector.

The procedural faces share most labels with toon's assets (hair styles, glasses, facial hair,
headwear, earrings, necklines), so assets map by table; a fringe picks toon's fringed style.
Colours go to the nearest palette entry in CIELAB. Shape attributes in [0, 1] set their slider
to the same relative position (0.5 = the slider's middle = the average face); where the face
model couples two measurements (a smile widens the mouth, a long chin lengthens the face) the
slider takes that in too. Head roll is copied; the avatar stays frontal otherwise.
"""
from __future__ import annotations

from typing import Any, Sequence

from swiftavatar.engines.schema import EngineSchema, VectorBatch
from swiftavatar.evaluation.designer import (BACKGROUND_KIND_RGB, check_engine, nearest_colour,
                                             pick, slider, vectors_from_rows)
from swiftavatar.faces.attributes import FaceAttributes

# (face hair_style, bangs) -> toon hair_style. Without a fringe every face style has a toon
# asset of the same name; a fringe turns short hair into `pixie` and long straight or wavy hair
# into `bangs` (the fringe changes the forehead, the most visible part); bobs, curls, ponytails
# and buns keep their asset (toon's bob and curly already have a low hairline).
_HAIR_STYLES = ("bald", "buzz", "short", "side_part", "curly", "afro", "bob", "long_straight",
                "long_wavy", "ponytail", "bun")
HAIR_STYLE: dict[tuple[str, bool], str] = {(s, b): s for s in _HAIR_STYLES for b in (False, True)}
HAIR_STYLE.update({("short", True): "pixie", ("long_straight", True): "bangs",
                   ("long_wavy", True): "bangs"})

# toon hair_volume per face style: how far the face's hair stands off the skull compared with
# the toon asset at volume 1 (afros and waves are fuller, close crops flatter); clipped to range.
HAIR_VOLUME: dict[str, float] = {"afro": 1.2, "long_wavy": 1.05, "curly": 0.9,
                                 "long_straight": 0.85}
FANTASY_HAIR = ("blue", "pink", "purple")  # dyed colours no natural hair record asks for

GLASSES = {g: g for g in ("none", "round", "rectangular", "browline", "sunglasses")}
FACIAL_HAIR = {f: f for f in ("none", "stubble", "moustache", "goatee", "full_beard")}
HEADWEAR = {"none": "none", "beanie": "beanie"}
EARRINGS = {e: e for e in ("none", "studs", "hoops")}
CLOTHING = {"crew_tshirt": "crew_tshirt", "v_neck": "v_neck"}
TEETH_SMILE = 0.72     # the face model opens the mouth (teeth show) above this smile
LAUGH_SMILE = 0.9


def _mouth(smile: float) -> str:
    """Closed lips use the `smile` asset (its curve slider gives the expression, neutral or
    frowning included); an open mouth with teeth is a `grin`, a very broad one a `laugh`."""
    if smile >= LAUGH_SMILE:
        return "laugh"
    return "grin" if smile > TEETH_SMILE else "smile"


def toon_row(a: FaceAttributes, schema: EngineSchema) -> dict[str, Any]:
    """{parameter: value or option label} for one face."""
    from swiftavatar.engines.toon_schema import (BACKGROUNDS, CLOTH_COLORS, EYE_COLORS,
                                                 HAIR_COLORS, SKIN_TONES)

    s = lambda name, t, lo=0.0, hi=1.0: slider(schema, name, t, lo, hi)  # noqa: E731
    roll = schema.param("head_tilt")
    return {
        # --- shape sliders: the attribute's relative position (Layout of the face model)
        "face_width": s("face_width", a.face_width),
        "face_length": s("face_length", a.chin_length, 0.25, 0.75),   # half the travel
        "jaw_width": s("jaw_width", a.jaw_width),
        "chin_length": s("chin_length", a.chin_length),
        "eye_size": s("eye_size", a.eye_size),
        "eye_spacing": s("eye_spacing", a.eye_spacing),
        "eye_height": 0.0,
        "eye_tilt": 0.0,
        "brow_height": 0.0,
        "brow_tilt": s("brow_tilt", a.brow_tilt),       # both: + raises the outer ends
        "brow_thickness": s("brow_thickness", a.brow_thickness),
        "nose_size": s("nose_size", a.nose_size),
        # the face model widens the mouth by 0.4 of the mouth_width span at full smile
        "mouth_width": s("mouth_width", a.mouth_width + 0.4 * (a.smile - 0.45)),
        # corners lift in proportion to (smile - 0.3) in the face model; toon's closed lips
        # lift 0.016 per unit of curve, which matches the face's lift at curve = smile - 0.3
        "mouth_curve": float(min(max(a.smile - 0.3, -1.0), 1.0)),
        "lip_thickness": s("lip_thickness", a.lip_thickness),
        "ear_size": 1.0,
        "hair_volume": float(min(max(HAIR_VOLUME.get(a.hair_style, 0.8), 0.8), 1.25)),
        "head_tilt": float(min(max(a.head_roll_deg, roll.low), roll.high)),  # both clockwise
        # --- assets
        "hair_style": pick(HAIR_STYLE, (a.hair_style, bool(a.bangs)), "hair_style/bangs"),
        "hair_color": nearest_colour(a.hair_rgb, HAIR_COLORS, exclude=FANTASY_HAIR),
        "skin_tone": nearest_colour(a.skin_rgb, SKIN_TONES),
        "eyes": "almond",
        "eye_color": nearest_colour(a.eye_rgb, EYE_COLORS),
        "brows": "natural",                             # thickness and tilt come from sliders
        "nose": "wide" if a.nose_size >= 0.75 else "button",
        "mouth": _mouth(a.smile),
        "facial_hair": pick(FACIAL_HAIR, a.facial_hair, "facial_hair"),
        "glasses": pick(GLASSES, a.glasses, "glasses"),
        "glasses_color": "black",                       # the record has no frame colour
        "headwear": pick(HEADWEAR, a.headwear, "headwear"),
        "earrings": pick(EARRINGS, a.earrings, "earrings"),
        "cheeks": "none",
        "clothing": pick(CLOTHING, a.clothing, "clothing"),
        "clothing_color": nearest_colour(a.cloth_rgb, CLOTH_COLORS),
        "background": nearest_colour(pick(BACKGROUND_KIND_RGB, a.background, "background"),
                                     BACKGROUNDS),
    }


def toon_designer(attrs: Sequence[FaceAttributes], schema: EngineSchema) -> VectorBatch:
    """Designer vectors (N rows) for the toon engine."""
    check_engine(schema, "toon")
    return vectors_from_rows(schema, [toon_row(a, schema) for a in attrs])


__all__ = ["HAIR_STYLE", "toon_designer", "toon_row"]
