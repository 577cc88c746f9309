"""Generators that ship with the project (float16 releases, loaded into float32 modules).

* `g_real_64`: G_real, the embedded 64-px SemanticStyleGAN pretrained on the built-in
  procedural face domain (image + mask discriminator included, to finetune new engines from).
* `g_avatar_toon_64`: G_avatar finetuned from it on `toon` renders (suggested prior).
* `g_avatar_avataaars_64`: G_avatar finetuned from it on `avataaars` renders (suggested prior).

How they were made (command, steps, images, wall time, device) is in README.md beside them and
in each file's run config; `scripts/train_generators_gpu.py` repeats it.
"""
from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).resolve().parent
RELEASES = {
    "g_real_64": "g_real_64.pt",
    "g_avatar_toon_64": "g_avatar_toon_64.pt",
    "g_avatar_avataaars_64": "g_avatar_avataaars_64.pt",
}
# the shipped G_avatar of each built-in engine
ENGINE_G_AVATAR = {"toon": "g_avatar_toon_64", "avataaars": "g_avatar_avataaars_64"}


def pretrained_path(name: str) -> Path:
    """The file of a shipped generator by name (see RELEASES)."""
    if name not in RELEASES:
        raise KeyError(f"no shipped generator {name!r}; shipped: {sorted(RELEASES)}")
    path = _DIR / RELEASES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from this install; reinstall the package "
                                f"or pass a checkpoint path")
    return path


def resolve_generator(spec: str) -> str:
    """A checkpoint argument: `pretrained:NAME` -> the shipped file's path; else unchanged."""
    if spec.startswith("pretrained:"):
        return str(pretrained_path(spec.split(":", 1)[1]))
    return spec


__all__ = ["ENGINE_G_AVATAR", "RELEASES", "pretrained_path", "resolve_generator"]
