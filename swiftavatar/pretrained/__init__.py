"""Models that ship with the project (float16 releases, loaded into float32 modules), by name.

Generators:
* `g_real_64`: G_real, the embedded 64-px SemanticStyleGAN pretrained on the built-in
  procedural face domain (image + mask discriminator included, to finetune new engines from).
* `g_avatar_toon_64`: G_avatar finetuned from it on `toon` renders (suggested prior).
* `g_avatar_avataaars_64`: G_avatar finetuned from it on `avataaars` renders (suggested prior).

Estimators (the paper's final method, + semantic augmentation, of each built-in engine, from
the main job; `scripts/release_estimators.py` writes them):
* `estimator_toon_64` (also `toon`), `estimator_avataaars_64` (also `avataaars`).

A checkpoint argument `pretrained:NAME` names one (`resolve`). How each was made is in
README.md beside them and in each file's run config.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DIR = Path(__file__).resolve().parent
PREFIX = "pretrained:"
GENERATOR, ESTIMATOR = "generator", "estimator"


@dataclass(frozen=True)
class Release:
    file: str           # the file's name in this package folder
    kind: str           # GENERATOR or ESTIMATOR


RELEASES: dict[str, Release] = {
    "g_real_64": Release("g_real_64.pt", GENERATOR),
    "g_avatar_toon_64": Release("g_avatar_toon_64.pt", GENERATOR),
    "g_avatar_avataaars_64": Release("g_avatar_avataaars_64.pt", GENERATOR),
    "estimator_toon_64": Release("estimator_toon_64.pt", ESTIMATOR),
    "estimator_avataaars_64": Release("estimator_avataaars_64.pt", ESTIMATOR),
}
# short names: an engine's name is its shipped estimator
ALIASES = {"toon": "estimator_toon_64", "avataaars": "estimator_avataaars_64"}
# the shipped G_avatar of each built-in engine
ENGINE_G_AVATAR = {"toon": "g_avatar_toon_64", "avataaars": "g_avatar_avataaars_64"}


def release_dir() -> Path:
    """The folder the shipped files are in."""
    return _DIR


def estimator_file_name(engine: str, input_size: int) -> str:
    """The shipped file name of an engine's estimator at an input size."""
    return f"estimator_{engine}_{input_size}.pt"


def shipped_names(kind: str) -> list[str]:
    """The names `pretrained:` takes for one kind (aliases first)."""
    full = [n for n, r in RELEASES.items() if r.kind == kind]
    return [a for a, n in ALIASES.items() if n in full] + full


def pretrained_path(name: str, kind: str | None = None) -> Path:
    """The file of a shipped model by name (RELEASES or ALIASES), of `kind` when given.
    KeyError: no such name; FileNotFoundError: the name is known but its file is absent."""
    full = ALIASES.get(name, name)
    rel = RELEASES.get(full)
    if rel is None or (kind is not None and rel.kind != kind):
        what = kind or "model"
        raise KeyError(f"no shipped {what} {name!r}; shipped: "
                       f"{', '.join(shipped_names(kind) if kind else sorted(RELEASES))}")
    path = release_dir() / rel.file
    if not path.is_file():
        if rel.kind == ESTIMATOR:
            raise FileNotFoundError(
                f"{PREFIX}{name}: the shipped estimator {rel.file} is not in this install: run "
                f"the main job (`swiftavatar demo`) and pass its estimator, e.g. --model "
                f"runs/demo/estimators/ENGINE/semantic_augmentation, or pass a checkpoint")
        raise FileNotFoundError(f"{path} is missing from this install; reinstall the package "
                                f"or pass a checkpoint path")
    return path


def resolve(spec: str, kind: str | None = None) -> str:
    """A checkpoint argument: `pretrained:NAME` -> the shipped file's path; else unchanged."""
    if spec.startswith(PREFIX):
        return str(pretrained_path(spec[len(PREFIX):], kind))
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
    for name, release in RELEASES.items():
        if path == release_dir() / release.file:
            return f"pretrained:{name}"
    if path.is_relative_to(base):
        return str(path.relative_to(base)) or "."
    return value


def resolve_generator(spec: str) -> str:
    """`resolve` for a generator argument."""
    return resolve(spec, GENERATOR)


__all__ = ["ALIASES", "ENGINE_G_AVATAR", "ESTIMATOR", "GENERATOR", "PREFIX", "RELEASES",
           "Release", "estimator_file_name", "portable", "pretrained_path", "release_dir",
           "resolve", "resolve_generator", "shipped_names"]
