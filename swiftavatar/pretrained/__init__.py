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
from typing import Any

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


def portable(value: Any, cwd: str | Path | None = None) -> Any:
    """A run config made fit to ship: every absolute path in it (nested dicts and lists too)
    that names a shipped file becomes `pretrained:NAME`, and one under `cwd` (default: the
    working directory) becomes relative to it, so a release names no path of the machine it
    was made on. Other values are returned unchanged."""
    base = Path(cwd or Path.cwd()).resolve()
    if isinstance(value, dict):
        return {k: portable(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable(v, base) for v in value)
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    path = Path(value)
    for name, file in RELEASES.items():
        if path == _DIR / file:
            return f"pretrained:{name}"
    if path.is_relative_to(base):
        return str(path.relative_to(base)) or "."
    return value


__all__ = ["ENGINE_G_AVATAR", "RELEASES", "portable", "pretrained_path", "resolve_generator"]
