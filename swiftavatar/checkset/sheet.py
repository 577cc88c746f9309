"""The check sheet: one row per photo, photo | crop the estimator saw | avatar | captions."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from swiftavatar.checkset.records import CATEGORIES
from swiftavatar.viz import grid

SHORT = {"skin_tone": "skin", "hair_colour": "hair", "hair_length": "length",
         "glasses": "glasses", "facial_hair": "facial", "headwear": "headwear"}


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """The whole image scaled (up or down) into a white size x size square, aspect kept."""
    im = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    k = size / max(im.size)
    im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))), Image.LANCZOS)
    out = Image.new("RGB", (size, size), (255, 255, 255))
    out.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return np.asarray(out)


def caption(photo_id: str, seen: Mapping[str, str | None],
            avatar: Mapping[str, str] | None) -> str:
    """Lines 'field  seen / avatar  ok|X' under the photo id (avatar None: no face found)."""
    lines = [photo_id, "seen / avatar"]
    if avatar is None:
        return "\n".join(lines + ["no face found:", "not answered"])
    for field in CATEGORIES:
        if field in avatar:
            s, a = seen[field], avatar[field]
            mark = "" if s is None else ("ok" if a == s else "X")
            lines.append(f"{SHORT[field]:<8} {s or '?'} / {a} {mark}")
    return "\n".join(lines)


def check_sheet(rows: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]],
                size: int = 192) -> np.ndarray:
    """rows of (photo, crop or None, avatar or None, caption) -> one (H, W, 3) uint8 sheet."""
    blank = np.full((size, size, 3), 255, np.uint8)
    tiles, labels = [], []
    for photo, crop, avatar, text in rows:
        for im in (photo, crop, avatar):
            tiles.append(blank if im is None else fit_square(im, size))
            labels.append("")
        tiles.append(blank)
        labels.append(text)
    return grid(np.stack(tiles), ncols=4, labels=labels)


__all__ = ["caption", "check_sheet", "fit_square"]
