"""CelebAMask-HQ as a face folder: its per-part binary masks combined into one 13-class label
map (`swiftavatar.semantics`), the layout SemanticStyleGAN trains on.

CelebAMask-HQ's layout::

    SRC/CelebA-HQ-img/<id>.jpg                              aligned faces (1024 px)
    SRC/CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png   one binary mask per part
                                                            (512 px, white = part)

Its 18 parts (19 classes with the background) are painted in the dataset's own order, a
later part over an earlier one (hair over skin, cloth over neck), each remapped to the
13-class layout: the two eyes, brows and ears merge, mouth and both lips become `mouth`,
the necklace is drawn as `neck` (the layout has no class for it). Parts an image lacks simply
have no file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from swiftavatar import atomic
from swiftavatar.faces.folder import FaceFolderError, _open
from swiftavatar.semantics import (BROWS, CLASS_INDEX, CLOTH, EARRING, EARS, EYEGLASSES, EYES,
                                   HAIR, HAT, MOUTH, NECK, NOSE, SKIN)

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
IDS_PER_MASK_DIR = 2000
# CelebAMask-HQ's parts in its painting order (label i + 1), and the 13-class id of each.
PARTS: tuple[tuple[str, int], ...] = (
    ("skin", SKIN), ("nose", NOSE), ("eye_g", EYEGLASSES), ("l_eye", EYES), ("r_eye", EYES),
    ("l_brow", BROWS), ("r_brow", BROWS), ("l_ear", EARS), ("r_ear", EARS), ("mouth", MOUTH),
    ("u_lip", MOUTH), ("l_lip", MOUTH), ("hair", HAIR), ("hat", HAT), ("ear_r", EARRING),
    ("neck_l", NECK), ("neck", NECK), ("cloth", CLOTH),
)
assert CLASS_INDEX["background"] == 0  # unpainted pixels stay 0


def mask_path(src: Path, face_id: int, part: str) -> Path:
    """Where CelebAMask-HQ keeps part `part` of face `face_id`."""
    return src / MASK_DIR / str(face_id // IDS_PER_MASK_DIR) / f"{face_id:05d}_{part}.png"


def combine_parts(src: str | Path, face_id: int) -> np.ndarray:
    """One face's part masks -> (H, W) uint8 class ids of the 13-class layout.
    Raises FaceFolderError when the face has no part mask at all, or two differ in size."""
    src = Path(src)
    label: np.ndarray | None = None
    for part, cls in PARTS:
        path = mask_path(src, face_id, part)
        if not path.is_file():
            continue
        on = np.asarray(_open(path, "mask").convert("L")) > 127
        if label is None:
            label = np.zeros(on.shape, np.uint8)
        elif on.shape != label.shape:
            raise FaceFolderError(f"mask {path} is {on.shape[1]}x{on.shape[0]} but the other "
                                  f"parts of face {face_id} are {label.shape[1]}x"
                                  f"{label.shape[0]}; replace the file")
        label[on] = cls
    if label is None:
        raise FaceFolderError(f"face {face_id} has no part masks (expected e.g. "
                              f"{mask_path(src, face_id, 'skin')}); remove its image or add "
                              f"its masks")
    return label


@dataclass(frozen=True)
class ImportResult:
    written: int
    skipped: int     # already in DST from an earlier run


def _face_ids(src: Path) -> list[tuple[int, Path]]:
    if not src.is_dir():
        raise FaceFolderError(f"{src} does not exist; pass the CelebAMask-HQ folder that holds "
                              f"{IMAGE_DIR}/ and {MASK_DIR}/")
    for sub in (IMAGE_DIR, MASK_DIR):
        if not (src / sub).is_dir():
            raise FaceFolderError(f"{src} has no {sub}/ folder; pass the CelebAMask-HQ folder "
                                  f"that holds {IMAGE_DIR}/ and {MASK_DIR}/")
    found: list[tuple[int, Path]] = []
    for p in (src / IMAGE_DIR).iterdir():
        if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png"):
            if not p.stem.isdigit():
                raise FaceFolderError(f"image {p} is not named <id>.jpg as in CelebAMask-HQ; "
                                      f"rename or remove it")
            found.append((int(p.stem), p))
    if not found:
        raise FaceFolderError(f"{src / IMAGE_DIR} holds no .jpg/.png images")
    return sorted(found)


def import_celebamask(src: str | Path, dst: str | Path, size: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Write CelebAMask-HQ (SRC) as a face folder DST/images/<id>.png + DST/masks/<id>.png.

    `size`: resize both to size x size (bilinear image, nearest mask); None keeps the mask's
    resolution and resizes the image to it (CelebA-HQ images are twice the masks' size).
    Each file is written atomically, the mask before its image, so an interrupted import
    leaves no image without its mask (FaceFolder skips a lone mask), and a re-run writes only
    the faces whose image is missing."""
    src, dst = Path(src), Path(dst)
    if size is not None and size < 1:
        raise ValueError(f"size must be positive, got {size}")
    faces = _face_ids(src)
    written = skipped = 0
    for n, (face_id, image_path) in enumerate(faces):
        out_image = dst / "images" / f"{face_id}.png"
        if out_image.is_file():
            skipped += 1
            continue
        label = combine_parts(src, face_id)
        side = size or label.shape[0]
        mask = Image.fromarray(label)
        if mask.size != (side, side):
            mask = mask.resize((side, side), Image.NEAREST)
        image = _open(image_path, "image").convert("RGB")
        if image.size != (side, side):
            image = image.resize((side, side), Image.BILINEAR)
        atomic.write_with(dst / "masks" / f"{face_id}.png", lambda t: mask.save(t, format="PNG"))
        atomic.write_with(out_image, lambda t: image.save(t, format="PNG"))
        written += 1
        if progress is not None:
            progress(n + 1, len(faces))
    return ImportResult(written, skipped)
