"""Regenerate the pictures in docs/ (deterministic: same bytes on the same library versions).

    .venv/bin/python scripts/make_docs.py [--out docs]

docs/engine_toon.png, docs/engine_avataaars.png: 8 x 8 random avatars (uniform prior, seed 0)
at 128 px; docs/faces_domain.png: 16 procedural faces with their masks at 128 px;
docs/faces_domain_randomised.png: 32 faces of the randomised domain with their masks (4 x 8);
docs/g_real_samples.png: the shipped G_real, 16 samples (z seed 0) with their masks;
docs/dual_domain_pairs.png (the paper's Figure 4): G_real(z) and its masks above the shipped
G_avatar(z) and its masks, for the same 8 z (seed 1); docs/dual_domain_pairs_avataaars.png
likewise for the shipped avataaars G_avatar. docs/dual_domain_pairs_v1.png is that sheet for
the previous toon release (before the shape path was frozen; in git history), kept as it is.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from swiftavatar.engines.registry import get_engine
from swiftavatar.faces.config import FaceDomainConfig
from swiftavatar.faces.procedural import contact_sheet
from swiftavatar.viz import grid, save_png

GENERATOR_ZOOM = 2  # 64-px generators drawn at 128 px (nearest) so the faces can be seen


def engine_sheet(name: str, out: Path, n: int = 64, size: int = 128) -> Path:
    with get_engine(name) as engine:
        images = engine.render(engine.schema.sample(seed=0, ids=range(n)), size).images
    return save_png(grid(images, ncols=8), out / f"engine_{name}.png")


def _zoom(img):
    return img.repeat(GENERATOR_ZOOM, 0).repeat(GENERATOR_ZOOM, 1)


def generator_sheets(out: Path) -> list[Path]:
    """The shipped generators' sample grids (see the module docstring)."""
    import torch

    from swiftavatar.training.checkpoint import load_generator
    from swiftavatar.training.samples import fixed_z, generator_rows, sample_grid

    g_real, _ = load_generator("pretrained:g_real_64")
    g_avatar, _ = load_generator("pretrained:g_avatar_toon_64")
    g_avataaars, _ = load_generator("pretrained:g_avatar_avataaars_64")
    with torch.no_grad():
        z = fixed_z(16, g_real.config.style_dim, seed=0)
        img, masks = generator_rows(g_real, z)
        rows = [img[:8], masks[:8], img[8:], masks[8:]]
        import numpy as np

        samples = grid(np.concatenate(rows), ncols=8)
        z = fixed_z(8, g_real.config.style_dim, seed=1)
        pairs = sample_grid(g_avatar, z, g_real)
        pairs_avataaars = sample_grid(g_avataaars, z, g_real)
    return [save_png(_zoom(samples), out / "g_real_samples.png"),
            save_png(_zoom(pairs), out / "dual_domain_pairs.png"),
            save_png(_zoom(pairs_avataaars), out / "dual_domain_pairs_avataaars.png")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs", help="output folder (default docs)")
    out = Path(p.parse_args().out)
    for name in ("toon", "avataaars"):
        print(engine_sheet(name, out))
    print(save_png(contact_sheet(seed=0, n=16, size=128, ncols=8), out / "faces_domain.png"))
    print(save_png(contact_sheet(seed=0, n=32, size=128, ncols=16,
                                 config=FaceDomainConfig.randomised()),
                   out / "faces_domain_randomised.png"))
    for path in generator_sheets(out):
        print(path)


if __name__ == "__main__":
    main()
