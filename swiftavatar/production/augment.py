"""Semantic augmentation (paper section 3.2, Eq. 7): perturb the local codes of chosen parts.

For each W+ code (N, n_latent, D), each augmentation a and each chosen part k with weight
lambda_k, draw one fresh code n = mapping(z), z ~ N(0, I), and mix it into both of the part's
local codes (shape row 2+2k and texture row 3+2k, or only one of them, per `codes`):

    w_k <- (1 - lambda_k) w_k + lambda_k n                                   (Eq. 7)

The shared base codes and every other part stay untouched, so (with SemanticStyleGAN's
compositional generator) only the chosen parts' regions change. The same n serves a part's
shape and texture rows, as a freshly sampled face would. Section 4: 10 augmentations per code,
lambda 1 for the background, 0.3 for hair, 0.06 for eyeglasses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from swiftavatar.config import StageConfig, option
from swiftavatar.production.problems import raise_problems
from swiftavatar.production.wplus import generator_device
from swiftavatar.models.generator import SemanticGenerator
from swiftavatar.semantics import CLASS_INDEX, CLASSES

CODE_CHOICES = ("both", "shape", "texture")


def _paper_lambdas() -> dict[str, float]:
    return {"background": 1.0, "hair": 0.3, "eyeglasses": 0.06}


@dataclass(frozen=True)
class AugmentConfig(StageConfig):
    """num_augmentations per code; lambdas: part name (swiftavatar.semantics.CLASSES) ->
    lambda_aug in [0, 1]; codes: which of a part's codes Eq. 7 perturbs. The fields with a help
    text are `swiftavatar produce` flags."""

    num_augmentations: int = option(10, flag="--augmentations",
                                    help="semantic augmentations per sample, Eq. 7")
    lambdas: dict[str, float] = option(
        default_factory=_paper_lambdas, flag="--lambda-aug", metavar="PART=VALUE",
        help="lambda_aug of one part (repeatable; replaces the defaults "
             + " ".join(f"{k}={v}" for k, v in _paper_lambdas().items()) + ")")
    codes: str = "both"

    def __post_init__(self) -> None:
        raise_problems(self.problems())

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)]; empty when the config is usable."""
        out = []
        if self.num_augmentations < 1:
            out.append(("num_augmentations", f"must be >= 1, got {self.num_augmentations}"))
        if self.codes not in CODE_CHOICES:
            out.append(("codes", f"must be one of {CODE_CHOICES}, got {self.codes!r}"))
        for name, lam in self.lambdas.items():
            if name not in CLASS_INDEX:
                out.append(("lambdas", f"unknown part {name!r}; parts are {CLASSES}"))
            elif not 0.0 <= float(lam) <= 1.0:
                out.append(("lambdas", f"lambda for {name!r} must lie in [0, 1], got {lam}"))
        return out

    def parts(self) -> list[tuple[int, float]]:
        """(class index, lambda) per chosen part, in class order."""
        return sorted((CLASS_INDEX[name], float(lam)) for name, lam in self.lambdas.items())


class AugmentResult(NamedTuple):
    latents: torch.Tensor      # (N * A, n_latent, D), row n * A + a = augmentation a of code n
    source: torch.Tensor       # (N * A,) long: index n of the code each row came from
    aug_index: torch.Tensor    # (N * A,) long: augmentation number a in 0..A-1


def code_rows(G: SemanticGenerator, k: int, codes: str = "both") -> list[int]:
    """W+ rows Eq. 7 perturbs for class k."""
    shape, texture = G.class_code_indices(k)
    return {"both": [shape, texture], "shape": [shape], "texture": [texture]}[codes]


@torch.no_grad()
def augment(G: SemanticGenerator, latents: torch.Tensor, config: AugmentConfig | None = None,
            *, seed: int = 0, device: torch.device | str | None = None) -> AugmentResult:
    """Eq. 7 on W+ codes (N, n_latent, D) -> AugmentResult with N * A codes (on G's device).

    The noise z (N, A, parts, D) comes from a CPU generator seeded with `seed`, so results are
    reproducible on any device; the same seed with a different N draws different noise.
    The input codes themselves are not part of the output.
    """
    cfg = config or AugmentConfig()
    own = generator_device(G, device)
    R, D, K = G.n_latent, G.config.style_dim, G.config.num_classes
    if latents.ndim != 3 or latents.shape[1:] != (R, D):
        raise ValueError(f"latents must be W+ (N, {R}, {D}), got {tuple(latents.shape)}")
    parts = cfg.parts()
    if any(k >= K for k, _ in parts):
        raise ValueError(f"config names parts {[CLASSES[k] for k, _ in parts]} but G has only "
                         f"{K} classes")
    N, A, P = latents.shape[0], cfg.num_augmentations, len(parts)
    out = latents.to(own).repeat_interleave(A, dim=0)                     # (N*A, R, D)
    if P:
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(N * A * P, D, generator=gen).to(own)
        noise = G.mapping(z).reshape(N * A, P, D)                          # n per row and part
        for j, (k, lam) in enumerate(parts):
            rows = code_rows(G, k, cfg.codes)
            mixed = (1.0 - lam) * out[:, rows] + lam * noise[:, j, None]    # Eq. 7
            out[:, rows] = mixed
    source = torch.arange(N, device=own).repeat_interleave(A)
    aug_index = torch.arange(A, device=own).repeat(N)
    return AugmentResult(out, source, aug_index)


__all__ = ["AugmentConfig", "AugmentResult", "CODE_CHOICES", "augment", "code_rows"]
