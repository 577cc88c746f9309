"""Folders of aligned faces with 13-class masks: the reader for real data (CelebAMask-HQ remapped
to `swiftavatar.semantics`) and the writer that puts procedural faces in the same layout, so
both domains go through one loader.

Layout::

    root/images/<stem>.jpg|.jpeg|.png   aligned face crops (any size, RGB or grey)
    root/masks/<stem>.png               8-bit class ids 0..12 (pixel value = class id)
    root/attributes.jsonl               optional, procedural faces only; evaluation only,
                                        never read by FaceFolder
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from swiftavatar.selfies import ImageInputError, open_image
from swiftavatar.semantics import NUM_CLASSES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class FaceFolderError(ValueError):
    """A face folder is malformed; the message names the file and what to do."""


def _square(im: Image.Image) -> Image.Image:
    w, h = im.size
    if w == h:
        return im
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return im.crop((left, top, left + s, top + s))


def _open(path: Path, what: str) -> Image.Image:
    """The decoded image; a decompression bomb (too many pixels) is refused before decoding."""
    try:
        with open_image(path) as im:
            im.load()
            return im.copy()
    except ImageInputError as e:
        raise FaceFolderError(f"cannot read {what} {e}; replace or remove the file") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise FaceFolderError(f"cannot read {what} {path}: {e}; replace or remove the file"
                              ) from None


def read_image(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8: centre-cropped to a square, bilinear resize."""
    im = _open(path, "image")
    im = _square(im.convert("RGB"))
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def read_mask(path: Path, size: int) -> np.ndarray:
    """(size, size) uint8 class ids: centre-cropped to a square, nearest-neighbour resize."""
    im = _open(path, "mask")
    if im.mode in ("L", "P"):
        arr = np.asarray(im)
    elif im.mode in ("I", "I;16", "I;16B", "I;16L"):
        arr = np.asarray(im).astype(np.int64)
    elif im.mode in ("RGB", "RGBA"):
        rgb = np.asarray(im.convert("RGB"))
        grey = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
        if not grey:
            raise FaceFolderError(
                f"mask {path} is a colour image; masks hold class ids 0..{NUM_CLASSES - 1} as "
                f"8-bit grey values (was a colourised mask saved instead?)")
        arr = rgb[..., 0]
    else:
        raise FaceFolderError(f"mask {path} has image mode {im.mode!r}; save it as 8-bit grey (L)")
    top = int(arr.max()) if arr.size else 0
    if top >= NUM_CLASSES or int(arr.min()) < 0:
        bad = int(np.count_nonzero(arr >= NUM_CLASSES))
        raise FaceFolderError(
            f"mask {path} holds class id {top} ({bad} pixels); the layout has ids "
            f"0..{NUM_CLASSES - 1} "
            f"(remap CelebAMask-HQ's 19 labels to swiftavatar.semantics first)")
    m = _square(Image.fromarray(arr.astype(np.uint8)))
    if m.size != (size, size):
        m = m.resize((size, size), Image.NEAREST)
    return np.asarray(m, dtype=np.uint8)


class FaceFolder:
    """Aligned face images with masks, resized to `size`. Items are (image (H, W, 3) uint8,
    mask (H, W) uint8). Every image must have a mask with the same stem."""

    def __init__(self, root: str | Path, size: int = 64) -> None:
        self.root = Path(root)
        self.size = int(size)
        if self.size < 1:
            raise ValueError(f"size must be positive, got {size}")
        if not self.root.is_dir():
            raise FileNotFoundError(f"face folder {self.root} does not exist (expected "
                                    f"images/ and masks/ inside it)")
        img_dir, mask_dir = self.root / "images", self.root / "masks"
        for d in (img_dir, mask_dir):
            if not d.is_dir():
                raise FaceFolderError(f"face folder {self.root} has no {d.name}/ folder; expected "
                                      f"images/<name>.jpg|png and masks/<name>.png")
        files = sorted(p for p in img_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FaceFolderError(f"{img_dir} holds no .jpg/.jpeg/.png images")
        seen: dict[str, Path] = {}
        for p in files:
            if p.stem in seen:
                raise FaceFolderError(f"two images share the name {p.stem!r}: {seen[p.stem].name} "
                                      f"and {p.name}; keep one")
            seen[p.stem] = p
        missing = [p.name for p in files if not (mask_dir / f"{p.stem}.png").is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise FaceFolderError(f"image {missing[0]}{more} has no mask: expected "
                                  f"{mask_dir / (Path(missing[0]).stem + '.png')}")
        self.image_paths = files
        self.mask_paths = [mask_dir / f"{p.stem}.png" for p in files]

    @property
    def names(self) -> list[str]:
        return [p.stem for p in self.image_paths]

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"face index {i} out of range for {n} faces in {self.root}")
        i = int(i) % n
        return read_image(self.image_paths[i], self.size), read_mask(self.mask_paths[i], self.size)

    def load_batch(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Images (N, H, W, 3) uint8 and masks (N, H, W) uint8."""
        idx = list(indices)
        images = np.zeros((len(idx), self.size, self.size, 3), np.uint8)
        masks = np.zeros((len(idx), self.size, self.size), np.uint8)
        for k, i in enumerate(idx):
            images[k], masks[k] = self[i]
        return images, masks


def _save_atomic(im: Image.Image, path: Path, **kw) -> None:
    from swiftavatar import atomic

    atomic.write_with(path, lambda tmp: im.save(tmp, **kw))


def write_face_folder(root: str | Path, images: np.ndarray, masks: np.ndarray,
                      names: Sequence[str] | None = None, image_format: str = "png",
                      jpeg_quality: int = 95) -> Path:
    """Write images (N, H, W, 3) uint8 and masks (N, H, W) uint8 in the FaceFolder layout.
    Each file goes to a temporary name first, then is renamed into place."""
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if masks.shape != images.shape[:3] or masks.dtype != np.uint8:
        raise ValueError(f"masks must be (N, H, W) uint8 matching the images, got "
                         f"{masks.shape} {masks.dtype}")
    if masks.size and int(masks.max()) >= NUM_CLASSES:
        raise ValueError(f"masks hold class id {int(masks.max())}; "
                         f"the layout has 0..{NUM_CLASSES - 1}")
    fmt = image_format.lower()
    if fmt not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    names = [f"{i:06d}" for i in range(len(images))] if names is None else list(names)
    if len(names) != len(images) or len(set(names)) != len(names):
        raise ValueError("names must be unique, one per image")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for img, mask, name in zip(images, masks, names):
        if fmt == "png":
            _save_atomic(Image.fromarray(img), root / "images" / f"{name}.png", format="PNG")
        else:
            _save_atomic(Image.fromarray(img), root / "images" / f"{name}.jpg", format="JPEG",
                         quality=int(jpeg_quality))
        _save_atomic(Image.fromarray(np.ascontiguousarray(mask)), root / "masks" / f"{name}.png",
                     format="PNG")
    return root


def write_face_batch(batch, root: str | Path, image_format: str = "png") -> Path:
    """Write a procedural FaceBatch as a face folder; its records go to attributes.jsonl
    (evaluation only: FaceFolder never reads them)."""
    from swiftavatar.faces.attributes import save_attributes
    names = [f"s{batch.seed}_{i:07d}" for i in batch.ids]
    write_face_folder(root, batch.images, batch.masks, names, image_format)
    save_attributes(batch.attributes, names, Path(root) / "attributes.jsonl")
    return Path(root)
