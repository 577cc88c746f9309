"""`avataaars`: the python-avatars cartoon (Avataaars art) as a discrete-only engine.

The analogue of the paper's Alter engine: every parameter is an asset or palette choice. Each
vector becomes a `python_avatars.Avatar`, its SVG is cropped (by rewriting the root viewBox) to
a square head-and-shoulders window and rasterised by cairosvg at the requested size over the
chosen background colour (sizes under 264 px at an integer multiple, then box-averaged down),
then decoded to (H, W, 3) uint8. About 15 ms per image, whatever the size up to 300 px.

Option labels are fixed here (snake_case of the python-avatars 1.4.1 enum names; hats are
prefixed `hat_` because the hair list also has a style named `hat`). They are not read from
the installed enums, whose lists python-avatars lets users extend on disk.

Choices, and the library's own interactions a user should know about:
- `clothing_graphic` `custom_text` is left out: its pixels depend on the system fonts.
- hat fabric takes `clothing_color` (one fabric palette, no parameter that only hats use).
- `clothing_graphic` shows only with `clothing=graphic_shirt`; `hair_color` does nothing under
  hats (and on `shaved_sides`); `facial_hair` is dropped by the tops `astronaut`, `curly_2`,
  `long_hair_curly`, `loose_hair`, `hat_hijab`, and `accessory` by `long_hair_curly`.
- no masks: the art has no part labels a renderer could read back cheaply.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np

from swiftavatar.engines.base import Engine, EngineError, RenderOutput
from swiftavatar.engines.schema import DiscreteParam, EngineSchema, Prior, VectorBatch

VERSION = "python-avatars-1.4.1"

# The crop in SVG units (the canvas is 264 x 280): a square of side 224 centred on the face
# (x = 132), placed so the eyes (y = 112) sit at 42% of the height, which matches the aligned
# faces the rest of the system uses. The face (112 wide) then fills half the width; the chin
# sits near 75% and the shoulders fill the bottom; the tallest tops lose up to 18 units (8% of
# the side) at the top.
CROP_SIDE = 224.0
CROP_X0 = 132.0 - CROP_SIDE / 2
CROP_Y0 = 112.0 - 0.42 * CROP_SIDE
# cairosvg 2.9 sizes a mask's surface in output pixels, so below about one pixel per SVG unit
# it cuts masked parts (skin, hair, clothes) short. Smaller sizes are rasterised at the least
# integer multiple of `size` that reaches this many pixels, then box-averaged down.
MIN_RASTER = 264

_HAIR = ("NONE", "BIG_HAIR", "BOB", "BUN", "CAESAR_SIDE_PART", "CAESAR", "CURLY", "CURVY",
         "DREADS", "FRIDA", "FRIZZLE", "FRO_BAND", "FRO", "LONG_NOT_TOO_LONG", "MIA_WALLACE",
         "SHAGGY_MULLET", "SHAGGY", "SHAVED_SIDES", "SHORT_CURLY", "SHORT_DREADS_1",
         "SHORT_DREADS_2", "SHORT_FLAT", "SHORT_ROUND", "SHORT_WAVED", "SIDES", "STRAIGHT_1",
         "STRAIGHT_2", "STRAIGHT_STRAND", "ASTRONAUT", "BRAIDS", "BRIDE", "BUZZCUT", "CORNROWS",
         "CURLY_2", "DREADLOCKS", "EINSTEIN_HAIR", "ELVIS", "EVIL_SPIKE", "HALF_SHAVED", "HAT",
         "LONG_HAIR_CURLY", "LOOSE_HAIR", "MOHAWK", "MOWGLI", "PIXIE", "POMPADOUR", "QUIFF",
         "TWIST_LONG_HAIR", "TWIST_LONG_HAIR_2", "WICK", "WILD")
_HATS = ("HAT", "HIJAB", "TURBAN", "WINTER_HAT_1", "WINTER_HAT_2", "WINTER_HAT_3",
         "WINTER_HAT_4", "CHEF_CAP", "JEDI", "GLADIATOR_HELMET")
_CLOTHING_PALETTE = ("BLACK", "BLUE_01", "BLUE_02", "BLUE_03", "GRAY_01", "GRAY_02", "HEATHER",
                     "PASTEL_BLUE", "PASTEL_GREEN", "PASTEL_ORANGE", "PASTEL_YELLOW", "PINK",
                     "RED", "WHITE")
_HAIR_PALETTE = ("AUBURN", "BLACK", "BLONDE", "BLONDE_GOLDEN", "BROWN", "BROWN_DARK",
                 "PASTEL_PINK", "PLATINUM", "RED", "SILVER_GRAY")

# (parameter, python-avatars enum, enum member names, default member, doc). `top` is built
# separately (two enums). Background colours use the clothing palette, a superset of
# python-avatars' three background colours.
_PARTS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("eyebrows", "EyebrowType",
     ("NONE", "ANGRY_NATURAL", "ANGRY", "DEFAULT_NATURAL", "DEFAULT", "FLAT_NATURAL",
      "FROWN_NATURAL", "RAISED_EXCITED_NATURAL", "RAISED_EXCITED", "SAD_CONCERNED_NATURAL",
      "SAD_CONCERNED", "UNIBROW_NATURAL", "UP_DOWN_NATURAL", "UP_DOWN"), "DEFAULT", "brow shape"),
    ("eyes", "EyeType",
     ("CLOSED", "CRY", "DEFAULT", "EYE_ROLL", "HAPPY", "HEART", "SIDE", "SQUINT", "SURPRISED",
      "WINK_WACKY", "WINK", "X_DIZZY"), "DEFAULT", "eye shape or expression"),
    ("nose", "NoseType", ("DEFAULT", "SMALL", "WIDE"), "DEFAULT", "nose shape"),
    ("mouth", "MouthType",
     ("CONCERNED", "DEFAULT", "DISBELIEF", "EATING", "GRIMACE", "SAD", "SCREAM_OPEN", "SERIOUS",
      "SMILE", "TONGUE", "TWINKLE", "VOMIT", "BIG_SMILE"), "DEFAULT", "mouth expression"),
    ("facial_hair", "FacialHairType",
     ("NONE", "BEARD_LIGHT", "BEARD_MAGESTIC", "BEARD_MEDIUM", "MOUSTACHE_FANCY",
      "MOUSTACHE_MAGNUM", "EINSTEIN_MOUSTACHE", "WICK_BEARD"), "NONE", "beard or moustache"),
    ("accessory", "AccessoryType",
     ("NONE", "EYEPATCH", "KURT", "PRESCRIPTION_1", "PRESCRIPTION_2", "ROUND", "SUNGLASSES",
      "WAYFARERS", "SUNGLASSES_2", "WAYFARERS_2"), "NONE", "glasses or eyepatch"),
    ("clothing", "ClothingType",
     ("NONE", "BLAZER_SHIRT", "BLAZER_SWEATER", "COLLAR_SWEATER", "GRAPHIC_SHIRT", "HOODIE",
      "OVERALL", "SHIRT_CREW_NECK", "SHIRT_SCOOP_NECK", "SHIRT_V_NECK", "ASTRONAUT_SUIT",
      "BOND_SUIT", "CHEF", "GLADIATOR", "JEDI_ROBE", "SHIRT_WICK"), "SHIRT_CREW_NECK",
     "clothing type"),
    ("clothing_graphic", "ClothingGraphic",
     ("NONE", "BAT", "BEAR", "CUMBIA", "DEER", "DIAMOND", "HOLA", "PIZZA", "RESIST", "SELENA",
      "SKULL_OUTLINE", "SKULL"), "NONE", "print on the shirt (only with clothing=graphic_shirt)"),
    ("skin_color", "SkinColor",
     ("TANNED", "YELLOW", "PALE", "LIGHT", "BROWN", "DARK_BROWN", "BLACK"), "LIGHT", "skin tone"),
    ("hair_color", "HairColor", _HAIR_PALETTE, "BROWN", "hair colour (not under hats)"),
    ("facial_hair_color", "HairColor", _HAIR_PALETTE, "BROWN", "beard/moustache colour"),
    ("clothing_color", "ClothingColor", _CLOTHING_PALETTE, "HEATHER",
     "fabric colour of clothing and hats"),
    ("background_color", "ClothingColor", _CLOTHING_PALETTE, "BLUE_01", "flat background colour"),
)
_TOP_DEFAULT = "short_flat"
# Parameters no photo decides (the platform's or the user's choice), role "style".
STYLE_PARAMS = ("clothing", "clothing_graphic", "clothing_color", "background_color")
_LABEL_OVERRIDES = {("HairType", "NONE"): "no_hair"}


def _label(enum_name: str, member: str) -> str:
    return _LABEL_OVERRIDES.get((enum_name, member), member.lower())


def build_schema() -> EngineSchema:
    """The fixed schema (needs no python-avatars import)."""
    tops = tuple(_label("HairType", m) for m in _HAIR) + tuple(f"hat_{m.lower()}" for m in _HATS)
    params = [DiscreteParam("top", tops, tops.index(_TOP_DEFAULT), "hair style or hat")]
    for name, enum_name, members, default, doc in _PARTS:
        labels = tuple(_label(enum_name, m) for m in members)
        role = "style" if name in STYLE_PARAMS else "face"
        params.append(DiscreteParam(name, labels, members.index(default), doc, role))
    return EngineSchema(engine="avataaars", version=VERSION, continuous=(),
                        discrete=tuple(params), supports_masks=False)


def _resolve_enums() -> list[list[Any]]:
    """Per discrete parameter (schema order), the python-avatars value for each option."""
    try:
        import python_avatars as pa
    except ImportError as e:
        raise EngineError(f"the avataaars engine needs python-avatars==1.4.1 and cairosvg "
                          f"(pip install python-avatars==1.4.1 cairosvg): {e}") from None
    if pa.__version__ != "1.4.1":
        raise EngineError(f"the avataaars engine is built for python-avatars 1.4.1, found "
                          f"{pa.__version__}; install python-avatars==1.4.1")

    def member(enum_name: str, name: str) -> Any:
        try:
            return getattr(getattr(pa, enum_name), name)
        except AttributeError:
            raise EngineError(f"python-avatars lacks {enum_name}.{name}; reinstall "
                              f"python-avatars==1.4.1") from None

    out = [[member("HairType", m) for m in _HAIR] + [member("HatType", m) for m in _HATS]]
    for _, enum_name, members, _, _ in _PARTS:
        out.append([member(enum_name, m) for m in members])
    return out


class AvataaarsEngine(Engine):
    """python-avatars adapter: 14 discrete parameters, no continuous ones, no masks."""

    name = "avataaars"
    default_size = 256

    def __init__(self) -> None:
        self._schema = build_schema()
        self._values = _resolve_enums()
        try:
            import cairosvg
        except ImportError as e:
            raise EngineError(f"the avataaars engine needs cairosvg (pip install cairosvg): "
                              f"{e}") from None
        self._cairosvg = cairosvg
        import python_avatars

        self._pa = python_avatars

    def suggested_prior(self) -> Prior:
        """Uniform sampling gives 7 in 8 avatars facial hair and 9 in 10 an accessory (mostly
        eyepatches and sunglasses); this makes 'none' as likely as all others together."""
        s = self.schema
        return Prior(discrete_weights={
            name: {"none": len(s.param(name).options) - 1.0}
            for name in ("facial_hair", "accessory")})

    @property
    def schema(self) -> EngineSchema:
        return self._schema

    def svg(self, discrete: np.ndarray, size: int) -> str:
        """The cropped SVG for one vector's option indices (n_d,), sized `size` x `size`."""
        v = [self._values[j][int(i)] for j, i in enumerate(discrete)]
        (top, brows, eyes, nose, mouth, fhair, acc, cloth, graphic,
         skin, hair_c, fhair_c, cloth_c, _bg) = v
        avatar = self._pa.Avatar(
            style=self._pa.AvatarStyle.TRANSPARENT, top=top, hat_color=cloth_c,
            eyebrows=brows, eyes=eyes, nose=nose, mouth=mouth, facial_hair=fhair,
            skin_color=skin, hair_color=hair_c, facial_hair_color=fhair_c, accessory=acc,
            clothing=cloth, clothing_color=cloth_c, shirt_graphic=graphic)
        return _crop_svg(avatar.render(), size)

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        images = np.empty((len(batch), size, size, 3), np.uint8)  # (N, H, W, 3)
        bg_j = self._schema.n_discrete - 1
        factor = -(-MIN_RASTER // size)  # ceil: supersampling factor, 1 from 264 px up
        for r in range(len(batch)):
            d = batch.discrete[r]  # (n_d,)
            try:
                svg = self.svg(d, size * factor)
                png = self._cairosvg.svg2png(bytestring=svg.encode("utf-8"),
                                             output_width=size * factor,
                                             output_height=size * factor,
                                             background_color=str(self._values[bg_j][int(d[bg_j])]))
            except Exception as e:  # an asset python-avatars or cairosvg cannot handle
                labels = {p.name: p.options[int(i)] for p, i in zip(self._schema.discrete, d)}
                raise EngineError(f"avataaars could not render row {r} {labels}: "
                                  f"{type(e).__name__}: {e}") from e
            images[r] = _decode_rgb(png, size, factor)
        return RenderOutput(images)


def _crop_svg(svg: str, size: int) -> str:
    """Replace the root element's 264x280 canvas by the square crop window at `size` px."""
    head = 'width="264px" height="280px" viewBox="0 0 264 280"'
    if head not in svg[:600]:
        raise EngineError("python-avatars returned an SVG without its usual 264x280 canvas; "
                          "the avataaars engine is built for python-avatars 1.4.1")
    crop = (f'width="{size}" height="{size}" '
            f'viewBox="{CROP_X0:g} {CROP_Y0:g} {CROP_SIDE:g} {CROP_SIDE:g}"')
    return svg.replace(head, crop, 1)


def _decode_rgb(png: bytes, size: int, factor: int) -> np.ndarray:
    """PNG of side size*factor -> (size, size, 3) uint8, averaging factor x factor blocks."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        rgb_im = im.convert("RGB")
        if factor > 1:
            rgb_im = rgb_im.reduce(factor)
        rgb = np.asarray(rgb_im)  # (H, W, 3) uint8
    if rgb.shape != (size, size, 3):
        raise EngineError(f"cairosvg returned a {rgb.shape} image, expected ({size}, {size}, 3)")
    return rgb
