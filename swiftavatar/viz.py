"""Contact sheets and image grids (pictures are how a person checks a GAN or an engine)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw


def grid(images: np.ndarray | Sequence[np.ndarray], ncols: int, pad: int = 2,
         pad_value: int = 255, labels: Sequence[str] | None = None) -> np.ndarray:
    """Tile N images (N, H, W, 3) uint8 into one (rows*(H+pad)+pad, ...) uint8 image.
    Optional `labels` are drawn under each tile's top-left corner."""
    imgs = np.asarray(images)
    if imgs.ndim == 3:  # (N, H, W) grey -> RGB
        imgs = np.repeat(imgs[..., None], 3, axis=-1)
    assert imgs.ndim == 4 and imgs.shape[-1] == 3, imgs.shape
    n, h, w, _ = imgs.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), pad_value, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = imgs[i]
    if labels:
        pil = Image.fromarray(out)
        draw = ImageDraw.Draw(pil)
        for i, text in enumerate(labels[:n]):
            r, c = divmod(i, ncols)
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            draw.text((x + 2, y + 1), text, fill=(0, 0, 0))
        out = np.asarray(pil)
    return out


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write atomically (temp file then rename), so an interrupted run leaves no broken PNG."""
    from swiftavatar import atomic

    atomic.write_with(path, lambda tmp: Image.fromarray(np.asarray(image, np.uint8))
                      .save(tmp, format="PNG"))
    return Path(path)
