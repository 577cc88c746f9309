"""The ground-truth attribute record of a procedural face, and its seeded sampling.

The record is for *evaluation only* (does a predicted avatar vector match the face?). No
training code may read it: training sees the images and masks alone, as with real photos.

Names follow the avatar-engine vocabulary (hair_style, hair_color, skin_tone, glasses,
facial_hair, headwear, earrings, clothing, face_width, jaw_width, chin_length, eye_size,
eye_spacing, brow_tilt, mouth_width, nose_size, ...), and every discrete label below is also an
option label of the built-in `toon` engine (backgrounds excepted: those are scene kinds), so a
mapping onto engine vectors stays one table per engine.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from swiftavatar.faces.config import FaceDomainConfig

RGB = tuple[int, int, int]

# Named colours are the average *appearance* (sRGB 0-255) of the part in a well-lit photo.
SKIN_TONES: dict[str, RGB] = {
    "fair": (238, 206, 186), "light": (226, 182, 153), "medium": (204, 150, 116),
    "olive": (176, 130, 92), "tan": (150, 102, 70), "brown": (112, 74, 52),
    "dark": (84, 54, 40), "deep": (62, 40, 30),
}
HAIR_COLORS: dict[str, RGB] = {
    "black": (30, 26, 24), "dark_brown": (62, 44, 34), "brown": (104, 72, 48),
    "light_brown": (140, 100, 64), "auburn": (128, 60, 38), "ginger": (168, 84, 44),
    "blonde": (196, 160, 104), "platinum": (222, 208, 180), "grey": (150, 148, 146),
}
EYE_COLORS: dict[str, RGB] = {
    "dark_brown": (50, 30, 20), "brown": (96, 58, 30), "hazel": (120, 96, 50),
    "green": (84, 112, 70), "blue": (80, 120, 160), "grey": (116, 126, 132),
}
CLOTH_COLORS: dict[str, RGB] = {   # everyday (muted) versions of the engines' colour names
    "black": (28, 28, 30), "white": (228, 228, 224), "grey": (128, 128, 130),
    "navy": (34, 44, 80), "blue": (60, 100, 160), "red": (160, 36, 40),
    "green": (60, 96, 60), "teal": (40, 110, 112), "purple": (90, 52, 100),
    "pink": (214, 150, 164), "yellow": (206, 176, 90),
}
HAIR_STYLES: tuple[str, ...] = (
    "bald", "buzz", "short", "side_part", "curly", "afro", "bob",
    "long_straight", "long_wavy", "ponytail", "bun",
)
HAIR_LENGTH: dict[str, str] = {  # apparent length from the front; bald and buzz count as short
    "bald": "short", "buzz": "short", "short": "short", "side_part": "short",
    "curly": "medium", "afro": "medium", "bob": "medium", "long_straight": "long",
    "long_wavy": "long", "ponytail": "long", "bun": "long",
}
HAIR_LENGTHS: tuple[str, ...] = ("short", "medium", "long")
BANGS_STYLES = frozenset({"short", "bob", "long_straight", "long_wavy", "ponytail", "bun", "curly"})
EARS_SHOWING = frozenset({"bald", "buzz", "short", "side_part", "ponytail", "bun"})
GLASSES: tuple[str, ...] = ("none", "round", "rectangular", "browline", "sunglasses")
FACIAL_HAIR: tuple[str, ...] = ("none", "stubble", "moustache", "goatee", "full_beard")
EARRINGS: tuple[str, ...] = ("none", "studs", "hoops")
CLOTHING: tuple[str, ...] = ("crew_tshirt", "v_neck")
HEADWEAR: tuple[str, ...] = ("none", "beanie")
FACE_SHAPES: tuple[str, ...] = ("oval", "round", "square", "long", "heart")
BACKGROUNDS: tuple[str, ...] = ("studio", "indoor", "outdoor")
OCCLUDERS: tuple[str, ...] = ("none", "hand", "microphone", "strand")
# record fields that only the randomised domain fills in (None: absent from the record)
OPTIONAL_FIELDS: tuple[str, ...] = ("monk_tone", "n_lights", "light_hardness", "white_balance",
                                    "cast_rgb", "gamma", "backdrop", "occluder")

# face_shape -> ranges of (face_width, jaw_width, chin_length)
_SHAPE_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "oval": ((0.35, 0.65), (0.3, 0.6), (0.4, 0.7)),
    "round": ((0.65, 1.0), (0.45, 0.75), (0.0, 0.4)),
    "square": ((0.5, 0.85), (0.75, 1.0), (0.2, 0.5)),
    "long": ((0.0, 0.35), (0.3, 0.6), (0.65, 1.0)),
    "heart": ((0.45, 0.8), (0.0, 0.3), (0.4, 0.75)),
}
# hair colour weights per skin tone (darker skin: mostly dark hair)
_HAIR_WEIGHTS_LIGHT = (2, 3, 3, 1.5, 1.2, 0.8, 2, 0.8, 0.8)
_HAIR_WEIGHTS_DARK = (6, 4, 1.5, 0.4, 0.3, 0.1, 0.3, 0.2, 0.8)


@dataclass(frozen=True)
class FaceAttributes:
    """Ground truth of one procedural face (evaluation only; never a training input).

    Continuous shape attributes are floats in [0, 1] (0.5 = average):
    face_width (narrow..broad), jaw_width (pointed..square), chin_length (short..long),
    eye_size, eye_spacing (close..wide), brow_thickness, brow_tilt (0 outer ends down,
    0.5 level, 1 outer ends up), mouth_width, lip_thickness, nose_size, smile (0 neutral,
    above ~0.7 the mouth opens and shows teeth). Pose and light are in physical units.
    """

    skin_tone: str
    skin_rgb: RGB
    hair_style: str
    hair_length: str                 # short / medium / long (derived from hair_style)
    hair_color: str
    hair_rgb: RGB
    bangs: bool
    eye_color: str
    eye_rgb: RGB
    glasses: str                     # none / round / rectangular / browline / sunglasses
    facial_hair: str                 # none / stubble / moustache / goatee / full_beard
    headwear: str                    # none / beanie
    earrings: str                    # none / studs / hoops
    face_shape: str                  # oval / round / square / long / heart
    face_width: float
    jaw_width: float
    chin_length: float
    eye_size: float
    eye_spacing: float
    brow_thickness: float
    brow_tilt: float
    mouth_width: float
    lip_thickness: float
    nose_size: float
    smile: float
    clothing: str                    # crew_tshirt / v_neck (the neckline)
    cloth_color: str
    cloth_rgb: RGB
    background: str                  # studio / indoor / outdoor
    head_yaw_deg: float              # + turns the face towards the image right
    head_roll_deg: float             # + rotates clockwise in the image
    head_scale: float                # 1 = nominal aligned crop
    head_shift: tuple[float, float]  # (x, y) translation, fraction of the image side
    light_azimuth_deg: float         # 0 = from the camera, + = from the image right
    light_elevation_deg: float       # + = from above
    light_kelvin: float
    light_intensity: float
    ambient: float
    exposure: float
    blur_sigma: float                # defocus sigma, fraction of the image side
    noise_std: float                 # sensor noise std, fraction of full scale
    jpeg_quality: int
    # --- only in the randomised domain (`FaceDomainConfig.randomised()`); None elsewhere and
    # left out of `to_dict`, so records of the default domain read and write as before ---
    monk_tone: int | None = None          # skin-tone category 1 (lightest) .. 10 (darkest)
    n_lights: int | None = None           # key light plus 0-2 extra lights
    light_hardness: float | None = None   # 1 = a hard point-like key, 0 = fully diffuse
    white_balance: float | None = None    # share of the light's colour cast the camera removes
    cast_rgb: tuple[float, float, float] | None = None   # camera colour-channel gains
    gamma: float | None = None            # tone-curve exponent on the sRGB image
    backdrop: str | None = None           # "scene" (as the default domain) / "wild"
    occluder: str | None = None           # none / hand / microphone / strand

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in OPTIONAL_FIELDS:
            if d[k] is None:
                del d[k]
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FaceAttributes":
        names = {f.name for f in dataclasses.fields(cls)}
        missing, extra = names - set(d) - set(OPTIONAL_FIELDS), set(d) - names
        if missing or extra:
            raise ValueError(f"FaceAttributes record: missing {sorted(missing)}, "
                             f"unknown {sorted(extra)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str],
          weights: tuple[float, ...] | None = None) -> str:
    if weights is None:
        return options[int(rng.integers(len(options)))]
    p = np.asarray(weights, np.float64)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _jitter(rng: np.random.Generator, rgb: RGB, amount: float) -> RGB:
    """Per-face variation of a named colour (multiplicative, sRGB)."""
    f = 1.0 + rng.uniform(-amount, amount) + rng.uniform(-amount / 3, amount / 3, size=3)
    return tuple(int(v) for v in np.clip(np.round(np.asarray(rgb) * f), 0, 255))


def sample_attributes(rng: np.random.Generator, config: FaceDomainConfig) -> FaceAttributes:
    """Draw one face's attributes. Consumes `rng` in a fixed order (renders stay reproducible)."""
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    tones = tuple(SKIN_TONES)
    skin_tone = _pick(rng, tones)
    dark = tones.index(skin_tone) / (len(tones) - 1)
    weights = tuple((1 - dark) * a + dark * b
                    for a, b in zip(_HAIR_WEIGHTS_LIGHT, _HAIR_WEIGHTS_DARK))
    hair_color = _pick(rng, tuple(HAIR_COLORS), weights)
    hair_style = _pick(rng, HAIR_STYLES)
    bangs = hair_style in BANGS_STYLES and bool(rng.random() < config.p_bangs)
    eye_color = _pick(rng, tuple(EYE_COLORS), (3, 3, 1.5, 1, 1.5 * (1 - dark), 1))
    if rng.random() < config.p_glasses:
        glasses = "sunglasses" if rng.random() < config.p_sunglasses else _pick(rng, GLASSES[1:4])
    else:
        glasses = "none"
    p_beard = config.p_facial_hair * (0.25 if HAIR_LENGTH[hair_style] != "short" else 1.0)
    facial_hair = _pick(rng, FACIAL_HAIR[1:]) if rng.random() < p_beard else "none"
    headwear = "beanie" if rng.random() < config.p_headwear else "none"
    ears_show = hair_style in EARS_SHOWING and headwear == "none"
    earrings = "none"
    if ears_show and rng.random() < config.p_earrings:
        earrings = _pick(rng, EARRINGS[1:])
    face_shape = _pick(rng, FACE_SHAPES, (3, 2, 2, 1.5, 1.5))
    fw, jw, cl = (u(*r) for r in _SHAPE_RANGES[face_shape])
    cloth_color = _pick(rng, tuple(CLOTH_COLORS))
    return FaceAttributes(
        skin_tone=skin_tone, skin_rgb=_jitter(rng, SKIN_TONES[skin_tone], 0.05),
        hair_style=hair_style, hair_length=HAIR_LENGTH[hair_style],
        hair_color=hair_color, hair_rgb=_jitter(rng, HAIR_COLORS[hair_color], 0.08),
        bangs=bangs, eye_color=eye_color, eye_rgb=_jitter(rng, EYE_COLORS[eye_color], 0.08),
        glasses=glasses, facial_hair=facial_hair, headwear=headwear, earrings=earrings,
        face_shape=face_shape, face_width=fw, jaw_width=jw, chin_length=cl,
        eye_size=u(0, 1), eye_spacing=u(0, 1), brow_thickness=u(0, 1), brow_tilt=u(0, 1),
        mouth_width=u(0, 1), lip_thickness=u(0, 1), nose_size=u(0, 1),
        smile=float(rng.beta(1.3, 1.6)),
        clothing=_pick(rng, CLOTHING), cloth_color=cloth_color,
        cloth_rgb=_jitter(rng, CLOTH_COLORS[cloth_color], 0.1),
        background=_pick(rng, BACKGROUNDS),
        head_yaw_deg=u(*config.yaw_deg), head_roll_deg=u(*config.roll_deg),
        head_scale=u(*config.scale), head_shift=(u(*config.shift), u(*config.shift)),
        light_azimuth_deg=u(*config.light_azimuth_deg),
        light_elevation_deg=u(*config.light_elevation_deg),
        light_kelvin=u(*config.light_kelvin), light_intensity=u(*config.light_intensity),
        ambient=u(*config.ambient), exposure=u(*config.exposure),
        blur_sigma=u(*config.blur_sigma), noise_std=u(*config.noise_std),
        jpeg_quality=int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)),
    )


def save_attributes(records: Sequence[FaceAttributes], names: Sequence[str],
                    path: str | Path) -> Path:
    """Write `{"name": ..., "attributes": {...}}` JSON lines (temp file, then rename)."""
    if len(records) != len(names):
        raise ValueError(f"{len(records)} records but {len(names)} names")
    from swiftavatar import atomic

    atomic.write_text(path, "".join(json.dumps({"name": str(name), "attributes": r.to_dict()})
                                    + "\n" for name, r in zip(names, records)))
    return Path(path)


def load_attributes(path: str | Path) -> dict[str, FaceAttributes]:
    """Read `save_attributes` output: name -> record (evaluation code only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no attribute file at {path}")
    out: dict[str, FaceAttributes] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                out[str(row["name"])] = FaceAttributes.from_dict(row["attributes"])
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(f"{path}:{n}: not a face attribute line ({e})") from None
    return out
