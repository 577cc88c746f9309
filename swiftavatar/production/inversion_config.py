"""Eq. 5's settings: the inversion's steps, learning-rate schedule and loss weights (section 4's
values by default). No torch: commands read the defaults without loading it."""
from __future__ import annotations

from dataclasses import dataclass

from swiftavatar.config import StageConfig, option
from swiftavatar.production.problems import raise_problems
from swiftavatar.semantics import EYEGLASSES, HAIR, HAT, SKIN


@dataclass(frozen=True)
class InversionConfig(StageConfig):
    """Section 4's values: 200 Adam steps at lr 0.1, lambda_i 0.1, lambda_p 1, lambda_l 1.
    The fields with a help text are `swiftavatar produce` flags, whose help states production's
    defaults (swiftavatar.production.config.produce_inversion)."""

    # the one place the paper's step count is written
    steps: int = option(200, help="inversion Adam steps (default {default}, section 4)")
    lr: float = 0.1
    lambda_p: float = 1.0           # LPIPS
    lambda_i: float = 0.1           # pixel MSE
    lambda_l: float = 1.0           # latent distance to the anchor (w_mean)
    lpips_size: int = 256           # LPIPS on images avg-pooled to this size (official)
    rampup: float = 0.05            # share of steps with linear lr warm-up
    rampdown: float = 0.25          # share of steps with cosine lr decay to 0
    # samples for the default w_mean (production: the draws of w_mean and w~_mean)
    n_mean: int = option(10_000, help="mapped samples for w~_mean")
    noise: str = "const"            # render-net noise: fixed buffers, as the official script
    # segmentation term (engines that render masks; not in the paper): cross-entropy of G's
    # seg against the engine mask, so each part is drawn by its own class's codes. None: "pick
    # per engine" (production resolves it; `invert` needs a number)
    lambda_s: float | None = option(
        0.0, metavar="W",
        help="weight of the inversion's segmentation term against the engine's masks "
             "(default: 0.1 for an engine that renders masks, else 0); it makes the inverted "
             "layout (hats, glasses, hair) the engine's")
    seg_temperature: float = 0.1    # G's seg lives on a [-1, 1] one-hot scale: logits seg / T
    # cross-domain colour term (not in the paper; Eq. 2 at inversion): G_real(w)'s mean colour
    # per region against the render's, so the realistic face gets the avatar's hair, skin, hat
    # and glasses colours
    lambda_c: float = option(
        0.0, metavar="W",
        help="weight of the inversion's cross-domain colour term: the realistic face's hair, "
             "skin, hat and glasses colours against the render's (default {default}; 0: the "
             "paper's Eq. 5 alone)")
    colour_classes: tuple[int, ...] = (SKIN, HAIR, HAT, EYEGLASSES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "colour_classes", tuple(int(k) for k in self.colour_classes))
        raise_problems(self.problems())

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable."""
        checks = [("steps", self.steps >= 1, "must be >= 1"), ("lr", self.lr > 0, "must be > 0"),
                  ("lpips_size", self.lpips_size >= 16, "must be >= 16"),
                  ("n_mean", self.n_mean >= 1, "must be >= 1"),
                  ("rampup", 0 <= self.rampup <= 1, "must lie in [0, 1]"),
                  ("rampdown", 0 < self.rampdown <= 1, "must lie in (0, 1]"),
                  ("seg_temperature", self.seg_temperature > 0, "must be > 0")]
        checks += [(name, (getattr(self, name) or 0.0) >= 0, "must be >= 0 (a loss weight)")
                   for name in ("lambda_p", "lambda_i", "lambda_l", "lambda_s", "lambda_c")]
        return [(name, f"{msg}, got {getattr(self, name)!r}") for name, ok, msg in checks
                if not ok]


__all__ = ["InversionConfig"]
