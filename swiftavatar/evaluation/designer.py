"""Designer ground truth: the avatar vector a human designer would make for a face.

The paper scores methods against vectors that designers made by hand for 116 photos (Table 1,
Table 3). Here the photos are held-out procedural faces, whose attribute record
(`swiftavatar.faces.FaceAttributes`, evaluation-only ground truth) tells a designer function
what the face looks like; the function picks the engine's closest assets, colours and slider
positions.

A designer is any callable

    designer(attrs: list[FaceAttributes], schema: EngineSchema) -> VectorBatch

returning one valid vector per record (`schema.row_errors` empty). The built-ins cover `toon`
and `avataaars`; an engine of one's own gets one with `register_designer(name, fn)` (this
process) or an entry point in the group `swiftavatar.designers` (every process: the value is
'module:function', the name the engine's `schema.engine`). An engine without one is still
trained and scored on its own renders; only the rows against the designer are left out.

Colours are matched by distance in CIELAB (sRGB -> Lab, D65), a perceptual form of RGB distance.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from swiftavatar.engines.schema import EngineSchema, InvalidVectorError, VectorBatch
from swiftavatar.faces.attributes import FaceAttributes

Designer = Callable[[Sequence[FaceAttributes], EngineSchema], VectorBatch]
RGB = tuple[int, int, int]

# Built-ins resolve lazily ('module:attr'), so importing this module imports no engine.
_BUILTINS: dict[str, str] = {
    "toon": "swiftavatar.evaluation.designer_toon:toon_designer",
    "avataaars": "swiftavatar.evaluation.designer_avataaars:avataaars_designer",
}
_REGISTERED: dict[str, Designer] = {}
ENTRY_POINT_GROUP = "swiftavatar.designers"

# A typical colour for each background kind of the procedural faces (studio paper, a lit
# interior wall, sky and foliage): what a designer would match a flat background colour to.
BACKGROUND_KIND_RGB: dict[str, RGB] = {
    "studio": (196, 198, 200), "indoor": (212, 196, 170), "outdoor": (168, 196, 222),
}


class NoDesignerError(LookupError):
    """No designer is registered for an engine."""

    def __str__(self) -> str:  # LookupError quotes its message; we want plain text
        return str(self.args[0])


def _entry_points() -> dict[str, str]:
    """{engine: 'module:function'} of the designers installed packages declare."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_designers() -> list[str]:
    """Engine names that have a designer (registered, built-in or an entry point)."""
    return sorted(set(_BUILTINS) | set(_REGISTERED) | set(_entry_points()))


def has_designer(engine: str) -> bool:
    """Whether `designer_for(engine)` finds one (without importing it)."""
    return engine in available_designers()


def register_designer(engine: str, designer: Designer, *, replace: bool = False) -> None:
    """Make `designer(attrs, schema) -> VectorBatch` the designer for engine `engine`."""
    if not callable(designer):
        raise TypeError(f"designer for {engine!r} must be callable (attrs, schema) -> VectorBatch,"
                        f" got {type(designer).__name__}")
    if not replace and engine in _REGISTERED:
        raise ValueError(f"a designer for engine {engine!r} is already registered; pass "
                         f"replace=True to replace it")
    _REGISTERED[engine] = designer


def designer_for(engine: str) -> Designer:
    """The designer for engine `engine`: a registered one first, then the built-ins, then
    the entry points."""
    if engine in _REGISTERED:
        return _REGISTERED[engine]
    target = _BUILTINS.get(engine) or _entry_points().get(engine)
    if target:
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module.strip()), attr.strip())
    raise NoDesignerError(
        f"no designer for engine {engine!r} (designers exist for: "
        f"{', '.join(available_designers())}). Write a function "
        f"`designer(attrs: list[FaceAttributes], schema: EngineSchema) -> VectorBatch` that maps "
        f"each face's attribute record to that engine's avatar vector, and register it with "
        f"swiftavatar.evaluation.register_designer({engine!r}, designer), or declare it "
        f"under the entry-point group {ENTRY_POINT_GROUP!r} of your package")


def design(attrs: Sequence[FaceAttributes], schema: EngineSchema, *,
           keep_style: bool = False) -> VectorBatch:
    """Run the designer of `schema.engine` and check its output fits the schema.

    The face protocol (default): style-role parameters (background, clothing, ...), which no
    photo decides, are set to the engine's defaults, as every prediction sets them, so a
    score compares faces. `keep_style` keeps the designer's own style choices."""
    attrs = list(attrs)
    if not attrs:
        raise ValueError("design() needs at least one FaceAttributes record")
    bad = [type(a).__name__ for a in attrs if not isinstance(a, FaceAttributes)]
    if bad:
        raise TypeError(f"design() takes FaceAttributes records, got {bad[0]}")
    out = designer_for(schema.engine)(attrs, schema)
    if not isinstance(out, VectorBatch) or len(out) != len(attrs):
        got = f"{len(out)} rows" if isinstance(out, VectorBatch) else type(out).__name__
        raise InvalidVectorError(f"the designer for {schema.engine!r} must return a VectorBatch "
                                 f"of {len(attrs)} rows, got {got}")
    if out.schema.fingerprint != schema.fingerprint:
        raise InvalidVectorError(f"the designer for {schema.engine!r} returned vectors of schema "
                                 f"{out.schema.fingerprint}, expected {schema.fingerprint}")
    out.validate()
    return out if keep_style else out.with_style_from(None)


# ---- helpers shared by the designers ------------------------------------------------------
def srgb_to_lab(rgb: np.ndarray | Sequence[float]) -> np.ndarray:
    """sRGB 0-255 (..., 3) -> CIELAB (..., 3) under D65."""
    c = np.asarray(rgb, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def nearest_colour(rgb: Sequence[float], palette: Mapping[str, Any],
                   exclude: Sequence[str] = ()) -> str:
    """The palette label whose colour is nearest `rgb` in CIELAB. Palette values are (r, g, b)
    0-255 or '#rrggbb' strings; labels in `exclude` are never chosen."""
    names = [n for n in palette if n not in exclude]
    if not names:
        raise ValueError("nearest_colour: every palette entry is excluded")
    cols = np.array([_rgb(palette[n]) for n in names], np.float64)  # (K, 3)
    d = np.linalg.norm(srgb_to_lab(cols) - srgb_to_lab(np.asarray(rgb, np.float64)), axis=1)
    return names[int(np.argmin(d))]


def _rgb(v: Any) -> tuple[float, float, float]:
    if isinstance(v, str):
        h = v.lstrip("#")
        return tuple(float(int(h[i:i + 2], 16)) for i in (0, 2, 4))  # type: ignore[return-value]
    return tuple(float(x) for x in v)  # type: ignore[return-value]


def slider(schema: EngineSchema, name: str, t: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """The value of continuous parameter `name` at relative position t in [0, 1] of the part
    [lo, hi] of its range (defaults: the whole range); clipped into range."""
    p = schema.param(name)
    span = p.high - p.low
    v = p.low + span * (lo + (hi - lo) * float(np.clip(t, 0.0, 1.0)))
    return float(np.clip(v, p.low, p.high))


def pick(table: Mapping[Any, str], key: Any, what: str) -> str:
    """table[key], or a clear error naming the attribute value no mapping covers."""
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"the designer has no mapping for {what} {key!r}; known: "
                         f"{', '.join(map(str, table))}") from None


def vectors_from_rows(schema: EngineSchema, rows: Sequence[Mapping[str, Any]]) -> VectorBatch:
    """Validated VectorBatch from per-face {parameter: value or option label} rows."""
    return VectorBatch.stack([schema.vector(dict(r)) for r in rows])


def check_engine(schema: EngineSchema, engine: str) -> None:
    if schema.engine != engine:
        raise ValueError(f"this designer makes {engine!r} vectors; got a schema for engine "
                         f"{schema.engine!r} (use designer_for({schema.engine!r}))")


__all__ = ["BACKGROUND_KIND_RGB", "Designer", "ENTRY_POINT_GROUP", "NoDesignerError",
           "available_designers", "check_engine", "design", "designer_for", "has_designer",
           "nearest_colour", "pick", "register_designer", "slider", "srgb_to_lab",
           "vectors_from_rows"]
