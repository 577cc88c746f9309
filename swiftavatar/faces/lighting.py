"""Several lights of any hardness for the randomised face domain.

Light transport is linear: a scene under lights A + B is the sum of the scene under A and under
B. The procedural renderer shades every part with one key light plus a fill, so a face under
one to three lights is rendered once per light (the same geometry and textures, replayed from
the same random state) and the linear images summed; only the first pass has the fill and the
(unlit) background. Hardness moves part of a light's power from the direction into the fill:
a large soft source lights the face from much of the hemisphere."""
from __future__ import annotations

from typing import Callable

from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.layout import Canvas
from swiftavatar.faces.shading import Light


def _directional_share(hardness: float) -> float:
    return 0.35 + 0.65 * hardness


def scene_lights(att: FaceAttributes,
                 extra: tuple[tuple[float, float, float, float], ...]) -> list[Light]:
    """The key light (with the fill, widened by its softness) and the extra lights (azimuth,
    elevation, kelvin, intensity), which add no fill."""
    h = 1.0 if att.light_hardness is None else att.light_hardness
    share = _directional_share(h)
    key = Light.from_angles(att.light_azimuth_deg, att.light_elevation_deg, att.light_kelvin,
                            att.light_intensity * share,
                            att.ambient + 0.5 * (1 - share) * att.light_intensity)
    return [key] + [Light.from_angles(az, el, k, inten * share, 0.0)
                    for az, el, k, inten in extra]


def render_lit(paint: Callable[[Light, bool], Canvas], lights: list[Light]) -> Canvas:
    """`paint(light, first)` renders the scene under one light (`first`: with the fill and the
    background); returns the first pass's canvas with every pass's light added."""
    cv = paint(lights[0], True)
    for light in lights[1:]:
        more = paint(light, False)
        cv.rgb += more.rgb
        cv.info["irradiance"] = cv.info["irradiance"] + more.info["irradiance"]
    return cv


__all__ = ["render_lit", "scene_lights"]
