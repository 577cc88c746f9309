"""Regenerate the pictures in docs/ that need no trained model (deterministic: same bytes on
the same library versions).

    .venv/bin/python scripts/make_docs.py [--out docs]

docs/engine_toon.png, docs/engine_avataaars.png: 8 x 8 random avatars (uniform prior, seed 0)
at 128 px; docs/faces_domain.png: 16 procedural faces with their masks at 128 px.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from swiftavatar.engines.registry import get_engine
from swiftavatar.faces.procedural import contact_sheet
from swiftavatar.viz import grid, save_png


def engine_sheet(name: str, out: Path, n: int = 64, size: int = 128) -> Path:
    with get_engine(name) as engine:
        images = engine.render(engine.schema.sample(seed=0, ids=range(n)), size).images
    return save_png(grid(images, ncols=8), out / f"engine_{name}.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs", help="output folder (default docs)")
    out = Path(p.parse_args().out)
    for name in ("toon", "avataaars"):
        print(engine_sheet(name, out))
    print(save_png(contact_sheet(seed=0, n=16, size=128, ncols=8), out / "faces_domain.png"))


if __name__ == "__main__":
    main()
