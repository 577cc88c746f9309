"""Where the parts of a procedural face go (its geometry in head-frame units), and the canvas
the parts are painted on."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swiftavatar.faces.attributes import FaceAttributes
from swiftavatar.faces.camera import Grid, Window
from swiftavatar.faces.shading import F32, Light

# Relative depths (units of the face half-width) used to fake yaw: a point at depth z moves
# sideways by sin(yaw) * z * half-width when the head turns.
DEPTH = {"eye": 0.78, "brow": 0.85, "bridge": 0.95, "tip": 1.2, "mouth": 0.9, "chin": 0.8,
         "glasses": 1.1, "ear": -0.25, "cheek": 0.55, "hairline": 0.6}


@dataclass(frozen=True)
class Layout:
    """Positions and sizes of the face parts for one record (head frame: x right, y down,
    1 = half the crop side). Eyes sit at y = -0.16, i.e. 42% of the image height."""

    a: float            # face half-width at the cheekbones
    a_jaw: float        # half-width of the jaw ellipse
    y_chin: float       # lowest point of the chin
    eye_y: float
    eye_dx: float       # eye centre offset from the midline
    eye_w: float        # eye half-width
    eye_h: float        # eye half-height (open)
    brow_y: float
    brow_t: float       # brow half-thickness
    nose_y: float       # nose base (bottom of the nostrils)
    nose_w: float       # half-width of the nose at the nostrils
    mouth_y: float
    mouth_w: float
    lip_up: float       # upper-lip thickness
    lip_lo: float       # lower-lip thickness
    ear_y: float
    neck_w: float
    shoulder_y: float
    yaw: float          # radians

    def dx(self, part: str) -> float:
        """Sideways shift of a part at its depth for this yaw."""
        return float(np.sin(self.yaw) * DEPTH[part] * self.a)

    def squash(self, side: int, part: str = "eye") -> float:
        """Horizontal foreshortening of a part on `side` (-1 left, +1 right) under yaw."""
        theta = np.arcsin(np.clip(self.eye_dx / self.a, -0.9, 0.9))
        return float(np.cos(side * theta + self.yaw) / np.cos(theta))


def make_layout(att: FaceAttributes) -> Layout:
    a = 0.41 + 0.09 * att.face_width
    y_chin = 0.45 + 0.10 * att.chin_length
    eye_w = 0.078 + 0.024 * att.eye_size
    nose_y = 0.10 + 0.02 * att.nose_size
    mouth_y = nose_y + (0.33 + 0.06 * att.chin_length) * (y_chin - nose_y)
    return Layout(
        a=a, a_jaw=a * (0.62 + 0.3 * att.jaw_width), y_chin=y_chin,
        eye_y=-0.16, eye_dx=0.18 + 0.045 * att.eye_spacing, eye_w=eye_w,
        eye_h=eye_w * (0.47 + 0.12 * att.eye_size) * (1.0 - 0.2 * att.smile),
        brow_y=-0.16 - 0.10 - 0.015 * att.eye_size, brow_t=0.011 + 0.012 * att.brow_thickness,
        nose_y=nose_y, nose_w=0.058 + 0.03 * att.nose_size,
        mouth_y=mouth_y, mouth_w=0.125 + 0.05 * att.mouth_width + 0.02 * att.smile,
        lip_up=0.022 + 0.014 * att.lip_thickness, lip_lo=0.029 + 0.018 * att.lip_thickness,
        ear_y=-0.09, neck_w=0.48 * a + 0.015, shoulder_y=0.68,
        yaw=float(np.radians(att.head_yaw_deg)),
    )


@dataclass
class Canvas:
    """The picture being painted (linear RGB), its class mask, and what later parts need to
    know about earlier ones (face lighting, the face's height field and outline)."""

    grid: Grid
    light: Light
    rgb: np.ndarray                       # (H, W, 3) float32 linear
    mask: np.ndarray                      # (H, W) uint8 class ids
    info: dict = field(default_factory=dict)

    @classmethod
    def blank(cls, grid: Grid, light: Light) -> "Canvas":
        n = grid.size
        return cls(grid=grid, light=light, rgb=np.zeros((n, n, 3), F32),
                   mask=np.zeros((n, n), np.uint8))

    def paint(self, alpha: np.ndarray, color: np.ndarray, cls: int | None = None,
              region: np.ndarray | None = None, win: Window | None = None) -> None:
        """Composite `color` (h, w, 3) or (3,) over the canvas with `alpha` (h, w); pixels where
        `region` (default: alpha) exceeds 0.5 take class `cls`. With `win`, the arrays cover
        just that window of the canvas."""
        rgb = self.rgb if win is None else self.rgb[win]
        rgb += (color - rgb) * alpha[..., None]
        if cls is not None:
            mask = self.mask if win is None else self.mask[win]
            mask[(alpha if region is None else region) > 0.5] = cls

    def window(self, x0: float, x1: float, y0: float, y1: float):
        """(win, x, y) for the head-frame box, or None when it is off the image."""
        win = self.grid.window(x0, x1, y0, y1)
        if win is None:
            return None
        return win, self.grid.x[win], self.grid.y[win]
