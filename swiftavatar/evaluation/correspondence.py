"""Dual-domain correspondence: does the realistic face show what the avatar shows?

The paired data is only as good as this (paper section 3.1: "given the same latent code, the
two generators ... synthesize paired images ... while preserving the same attributes"). This
module measures it on two aligned image sets with their 13-class masks, side A the avatar (an
engine render with the engine's mask, or G_avatar(w) with its segmentation) and side B the
realistic face (G_real(w) with its segmentation), without training anything:

* per region (hair, skin, background, clothing, glasses, hat): the CIELAB distance (Delta E
  1976) between the region's mean colour in A and in B, over pairs where both show the region;
* presence of glasses, hat and facial hair in each side's mask (facial hair: hair-class pixels
  on the chin and upper lip, inside the face), reported as agreement, as the share of A's
  occurrences B carries, and as the share of B's occurrences A has;
* mask IoU per region (over pairs where either side shows it) and its mean.

Colour and presence are what a person sees first; IoU says whether the layout is shared.
Pure numpy; `generator_pairs` draws the same z through two generators.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from swiftavatar.evaluation.designer import srgb_to_lab
from swiftavatar.semantics import (BACKGROUND, BROWS, CLOTH, EYEGLASSES, EYES, HAIR, HAT, MOUTH,
                                   NOSE, SKIN)

if TYPE_CHECKING:
    import torch

    from swiftavatar.models.generator import SemanticGenerator

REGIONS: dict[str, int] = {"hair": HAIR, "skin": SKIN, "background": BACKGROUND,
                           "clothing": CLOTH, "glasses": EYEGLASSES, "hat": HAT}
PRESENCE = ("glasses", "hat", "facial_hair")
MIN_PIXELS = 0.004          # a region counts as shown above this share of the image
FACIAL_HAIR_DELTA_E = 15.0  # chin / upper lip against the cheeks
FACE_CLASSES = (SKIN, EYES, BROWS, MOUTH, NOSE)


# ---- colour ------------------------------------------------------------------------------
def region_colors(images: np.ndarray, masks: np.ndarray, cls: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Mean sRGB colour of class `cls` per image -> colours (N, 3) and pixel shares (N,)."""
    hit = masks == cls                                                    # (N, H, W)
    count = hit.sum((1, 2))                                               # (N,)
    sums = np.einsum("nhw,nhwc->nc", hit.astype(np.float64), images.astype(np.float64))
    return sums / np.maximum(count, 1)[:, None], count / hit[0].size


# ---- presence ----------------------------------------------------------------------------
def facial_hair_present(images: np.ndarray, masks: np.ndarray,
                        delta_e: float = FACIAL_HAIR_DELTA_E) -> np.ndarray:
    """(N, H, W, 3) uint8 images with (N, H, W) class ids -> (N,) bool: the chin and upper lip
    differ in colour from the cheeks by more than `delta_e` (CIELAB).

    Masks disagree on beards (CelebAMask-HQ labels them skin, an engine may label them hair),
    so this reads colour, on aligned crops (eyes near 43% of the height, as both the face
    domain and the engines frame them): skin and hair pixels of the lower-face zone (rows
    56-76%, the central quarter in width; the mouth left out) against the skin pixels of the
    cheek band (rows 45-55%, columns 28-40% and 60-72%)."""
    n, H, W = masks.shape
    zone = (slice(round(0.56 * H), round(0.76 * H)), slice(round(0.38 * W), round(0.62 * W)))
    band = slice(round(0.45 * H), round(0.55 * H))
    cols = np.r_[round(0.28 * W):round(0.40 * W), round(0.60 * W):round(0.72 * W)]
    out = np.zeros(n, bool)
    for i in range(n):
        m, im = masks[i], images[i].astype(np.float64)
        cheek = m[band][:, cols] == SKIN
        lower = np.isin(m[zone], (SKIN, HAIR))
        if cheek.sum() < 4 or lower.sum() < 4:
            continue
        c_cheek = im[band][:, cols][cheek].mean(0)
        c_lower = im[zone][lower].mean(0)
        out[i] = float(np.linalg.norm(srgb_to_lab(c_cheek) - srgb_to_lab(c_lower))) > delta_e
    return out


def presence(images: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """{glasses, hat, facial_hair: (N,) bool} from images and their class-id masks."""
    shares = {k: (masks == REGIONS[k]).mean((1, 2)) for k in ("glasses", "hat")}
    return {"glasses": shares["glasses"] > MIN_PIXELS, "hat": shares["hat"] > MIN_PIXELS,
            "facial_hair": facial_hair_present(images, masks)}


# ---- the report --------------------------------------------------------------------------
@dataclass
class RegionScore:
    n_both: int                  # pairs where both sides show the region
    delta_e: float | None        # mean CIELAB distance over those pairs
    iou: float | None            # mean mask IoU over pairs where either side shows it


@dataclass
class PresenceScore:
    a_rate: float                # share of A showing it
    b_rate: float                # share of B showing it
    agreement: float             # share of pairs where A and B agree
    carried: float | None        # P(B shows it | A shows it)
    spurious: float | None       # P(A shows it | B shows it) complement: B shows it, A not


@dataclass
class CorrespondenceReport:
    n: int
    regions: dict[str, RegionScore]
    presence: dict[str, PresenceScore]
    mean_iou: float
    mean_delta_e: float          # over hair, skin (the paper's Eq. 2 regions) and hat

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CorrespondenceReport":
        return cls(int(d["n"]), {k: RegionScore(**v) for k, v in d["regions"].items()},
                   {k: PresenceScore(**v) for k, v in d["presence"].items()},
                   float(d["mean_iou"]), float(d["mean_delta_e"]))

    def table(self) -> str:
        """A plain-text table (what `produce` prints)."""
        lines = [f"correspondence over {self.n} pairs (A avatar, B realistic face)",
                 f"{'region':<11} {'both':>5} {'dE':>6} {'IoU':>5}"]
        for name, r in self.regions.items():
            de = "-" if r.delta_e is None else f"{r.delta_e:.1f}"
            iou = "-" if r.iou is None else f"{r.iou:.2f}"
            lines.append(f"{name:<11} {r.n_both:>5} {de:>6} {iou:>5}")
        lines.append(f"{'presence':<11} {'A':>5} {'B':>5} {'agree':>6} {'carried':>8}")
        for name, p in self.presence.items():
            car = "-" if p.carried is None else f"{p.carried:.2f}"
            lines.append(f"{name:<11} {p.a_rate:>5.2f} {p.b_rate:>5.2f} {p.agreement:>6.2f} "
                         f"{car:>8}")
        lines.append(f"mean IoU {self.mean_iou:.3f}, mean dE (hair, skin, hat) "
                     f"{self.mean_delta_e:.1f}")
        return "\n".join(lines)


def _check(images: np.ndarray, masks: np.ndarray, side: str) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"side {side}: images must be (N, H, W, 3) uint8, got "
                         f"{images.shape} {images.dtype}")
    if masks.shape != images.shape[:3]:
        raise ValueError(f"side {side}: masks must be (N, H, W) = {images.shape[:3]}, got "
                         f"{masks.shape}")


def _resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of (N, h, w) class ids to (N, size, size)."""
    h, w = masks.shape[1:]
    if (h, w) == (size, size):
        return masks
    rows = (np.arange(size) * h // size)
    cols = (np.arange(size) * w // size)
    return masks[:, rows][:, :, cols]


def _resize_images(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1:3] == (size, size):
        return images
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
                     for im in images])


def correspondence(images_a: np.ndarray, masks_a: np.ndarray, images_b: np.ndarray,
                   masks_b: np.ndarray) -> CorrespondenceReport:
    """The report for N aligned pairs; A and B may differ in size (both go to the smaller)."""
    images_a, masks_a = np.asarray(images_a), np.asarray(masks_a)
    images_b, masks_b = np.asarray(images_b), np.asarray(masks_b)
    _check(images_a, masks_a, "A")
    _check(images_b, masks_b, "B")
    if len(images_a) != len(images_b) or len(images_a) == 0:
        raise ValueError(f"need the same number (>= 1) of A and B images, got {len(images_a)} "
                         f"and {len(images_b)}")
    size = min(images_a.shape[1], images_b.shape[1])
    images_a, images_b = _resize_images(images_a, size), _resize_images(images_b, size)
    masks_a, masks_b = _resize_masks(masks_a, size), _resize_masks(masks_b, size)
    regions: dict[str, RegionScore] = {}
    for name, cls in REGIONS.items():
        col_a, share_a = region_colors(images_a, masks_a, cls)
        col_b, share_b = region_colors(images_b, masks_b, cls)
        both = (share_a > MIN_PIXELS) & (share_b > MIN_PIXELS)
        de = None
        if both.any():
            de = float(np.linalg.norm(srgb_to_lab(col_a[both]) - srgb_to_lab(col_b[both]),
                                      axis=-1).mean())
        ha, hb = masks_a == cls, masks_b == cls
        union = (ha | hb).sum((1, 2))
        shown = (share_a > MIN_PIXELS) | (share_b > MIN_PIXELS)
        iou = None
        if shown.any():
            inter = (ha & hb).sum((1, 2))
            iou = float((inter[shown] / np.maximum(union[shown], 1)).mean())
        regions[name] = RegionScore(int(both.sum()), de, iou)
    pa, pb = presence(images_a, masks_a), presence(images_b, masks_b)
    pres = {}
    for name in PRESENCE:
        a, b = pa[name], pb[name]
        pres[name] = PresenceScore(
            a_rate=float(a.mean()), b_rate=float(b.mean()), agreement=float((a == b).mean()),
            carried=float(b[a].mean()) if a.any() else None,
            spurious=float((~a[b]).mean()) if b.any() else None)
    ious = [r.iou for r in regions.values() if r.iou is not None]
    des = [regions[k].delta_e for k in ("hair", "skin", "hat") if regions[k].delta_e is not None]
    return CorrespondenceReport(len(images_a), regions, pres,
                                float(np.mean(ious)) if ious else 0.0,
                                float(np.mean(des)) if des else float("nan"))


def generator_pairs(g_avatar: "SemanticGenerator", g_real: "SemanticGenerator", n: int = 256,
                    *, seed: int = 0, batch_size: int = 64, truncation: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same n codes through both generators -> (avatar images, avatar masks, realistic
    images, realistic masks), images (n, S, S, 3) uint8, masks (n, S, S) argmax of each
    generator's own segmentation. `truncation` < 1 pulls the codes towards G_real's mean w."""
    import torch

    from swiftavatar.production.wplus import frozen, generator_device

    dev = generator_device(g_real)
    gen = torch.Generator().manual_seed(seed)
    outs: list[list[np.ndarray]] = [[], [], [], []]
    with frozen(g_avatar), frozen(g_real), torch.no_grad():
        mean = g_real.mean_latent(4096, generator=torch.Generator(dev).manual_seed(seed),
                                  device=dev) if truncation < 1 else None
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), g_real.config.style_dim, generator=gen)
            w = g_real.mapping(z.to(dev))
            w = g_real.truncate(w, truncation, mean)
            for j, g in enumerate((g_avatar, g_real)):
                image, seg = g(w, input_is_latent=True, noise="const")
                outs[2 * j].append(_to_uint8(image))
                outs[2 * j + 1].append(seg.argmax(1).to(torch.uint8).cpu().numpy())
    return tuple(np.concatenate(o) for o in outs)  # type: ignore[return-value]


def _to_uint8(images: "torch.Tensor") -> np.ndarray:
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.permute(0, 2, 3, 1).byte().numpy()


__all__ = ["CorrespondenceReport", "PRESENCE", "PresenceScore", "REGIONS", "RegionScore",
           "correspondence", "facial_hair_present", "generator_pairs", "presence",
           "region_colors"]
