"""Configuration of the built-in procedural face domain."""
from __future__ import annotations

from dataclasses import dataclass


def _check_range(name: str, rng: tuple[float, float], low: float, high: float) -> None:
    a, b = rng
    if not (low <= a <= b <= high):
        raise ValueError(f"FaceDomainConfig.{name}: need {low} <= lo <= hi <= {high}, got {rng}")


def _check_prob(name: str, p: float) -> None:
    if not (0.0 <= p <= 1.0):
        raise ValueError(f"FaceDomainConfig.{name}: a probability in [0, 1], got {p}")


@dataclass(frozen=True)
class FaceDomainConfig:
    """What the procedural faces look like. Ranges are (low, high), sampled uniformly per face.

    The defaults aim at aligned selfie crops like CelebAMask-HQ's: a centred face, eyes near
    42% of the height, mild head pose, indoor/outdoor/studio light, consumer-camera artefacts.
    """

    size: int = 64                      # output side in pixels (images are square)
    # --- attribute frequencies -----------------------------------------------------------
    p_glasses: float = 0.25             # any glasses (clear frames or sunglasses)
    p_sunglasses: float = 0.25          # share of sunglasses among glasses
    p_facial_hair: float = 0.3          # stubble / moustache / goatee / beard (a quarter of
                                        # this for medium and long hair)
    p_bangs: float = 0.3                # fringe, for styles that can have one
    p_headwear: float = 0.06            # a beanie
    p_earrings: float = 0.15            # studs or hoops, on faces whose ears show
    # --- pose (an aligned crop still wobbles) ---------------------------------------------
    yaw_deg: tuple[float, float] = (-14.0, 14.0)
    roll_deg: tuple[float, float] = (-7.0, 7.0)
    scale: tuple[float, float] = (0.93, 1.07)
    shift: tuple[float, float] = (-0.03, 0.03)   # translation, fraction of the image side
    # --- lighting -------------------------------------------------------------------------
    light_azimuth_deg: tuple[float, float] = (-70.0, 70.0)   # 0 = from the camera, + = right
    light_elevation_deg: tuple[float, float] = (-5.0, 55.0)  # + = from above
    light_kelvin: tuple[float, float] = (3200.0, 7500.0)     # key-light colour temperature
    light_intensity: tuple[float, float] = (0.8, 1.25)
    ambient: tuple[float, float] = (0.2, 0.5)                # fill light relative to the key
    white_balance: float = 0.75          # how much of the light's colour cast the camera removes
    # --- camera ---------------------------------------------------------------------------
    exposure: tuple[float, float] = (0.85, 1.15)             # relative to metering on the face
    blur_sigma: tuple[float, float] = (0.0, 0.006)           # defocus, fraction of the image side
    noise_std: tuple[float, float] = (0.003, 0.025)          # sensor noise, fraction of full scale
    jpeg_quality: tuple[int, int] = (40, 95)                 # PIL JPEG quality of the round trip

    def __post_init__(self) -> None:
        if not (16 <= int(self.size) <= 1024):
            raise ValueError(f"FaceDomainConfig.size: 16..1024 pixels, got {self.size}")
        for name in ("p_glasses", "p_sunglasses", "p_facial_hair", "p_bangs", "p_headwear",
                     "p_earrings", "white_balance"):
            _check_prob(name, getattr(self, name))
        _check_range("yaw_deg", self.yaw_deg, -30.0, 30.0)
        _check_range("roll_deg", self.roll_deg, -20.0, 20.0)
        _check_range("scale", self.scale, 0.7, 1.3)
        _check_range("shift", self.shift, -0.15, 0.15)
        _check_range("light_azimuth_deg", self.light_azimuth_deg, -90.0, 90.0)
        _check_range("light_elevation_deg", self.light_elevation_deg, -45.0, 80.0)
        _check_range("light_kelvin", self.light_kelvin, 2000.0, 12000.0)
        _check_range("light_intensity", self.light_intensity, 0.1, 4.0)
        _check_range("ambient", self.ambient, 0.0, 2.0)
        _check_range("exposure", self.exposure, 0.25, 4.0)
        _check_range("blur_sigma", self.blur_sigma, 0.0, 0.05)
        _check_range("noise_std", self.noise_std, 0.0, 0.2)
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)

    @classmethod
    def randomised(cls, **overrides) -> "FaceDomainConfig":
        """The opt-in domain-randomised preset (`swiftavatar.faces.randomise`): wider light,
        colour, camera, people and scenes, several lights, occluders. The defaults stay as
        they are (the shipped G_real was trained on them)."""
        from swiftavatar.faces.randomise import randomised_config
        return randomised_config(**overrides)

    def with_size(self, size: int) -> "FaceDomainConfig":
        from dataclasses import replace
        return replace(self, size=int(size))
