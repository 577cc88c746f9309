"""The 13-class face segmentation layout (CelebAMask-HQ remapped, as in SemanticStyleGAN)."""
from __future__ import annotations

import numpy as np

CLASSES: tuple[str, ...] = (
    "background", "skin", "eyes", "brows", "mouth", "nose", "ears",
    "hair", "neck", "cloth", "eyeglasses", "hat", "earring",
)
NUM_CLASSES = len(CLASSES)
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}

BACKGROUND, SKIN, EYES, BROWS, MOUTH, NOSE, EARS, HAIR, NECK, CLOTH, EYEGLASSES, HAT, EARRING = range(13)

# Classes SemanticStyleGAN treats as see-through (their pixels may show what lies behind).
TRANSPARENT = (EYEGLASSES, EARRING)

# A fixed palette for drawing masks (N, H, W) -> (N, H, W, 3).
PALETTE = np.array([
    [0, 0, 0], [204, 153, 119], [51, 102, 255], [102, 51, 0], [255, 0, 85], [255, 170, 0],
    [170, 85, 255], [153, 51, 51], [255, 204, 153], [0, 153, 136], [0, 255, 255],
    [255, 255, 0], [255, 0, 255],
], dtype=np.uint8)


def colorize(masks: np.ndarray) -> np.ndarray:
    """Class-id masks (..., H, W) uint8 -> RGB (..., H, W, 3) uint8 with `PALETTE`."""
    masks = np.asarray(masks)
    if masks.size and int(masks.max()) >= NUM_CLASSES:
        raise ValueError(f"mask holds class id {int(masks.max())}; the layout has {NUM_CLASSES}")
    return PALETTE[masks]
