"""w~_mean, computed once per G_avatar (section 4's start code; `modified_mean_latent` costs
n mapping + local-generator passes, minutes for the paper's 10^4 draws on a CPU).

Looked up in this order, for the draws (n, seed) a run asks for:
1. the checkpoint itself (swiftavatar.training.checkpoint.w_tilde_entries: a released G_avatar
   stores it);
2. a cache file beside the checkpoint, `<checkpoint name>.w_tilde-<sha256[:16]>-n<n>-s<seed>.pt`,
   keyed by the checkpoint file's content hash, so a changed checkpoint never gets a stale mean;
3. computed, then written to that cache file atomically (where the directory is writable; the
   shipped generators' directory, swiftavatar/pretrained/, is never written to).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from swiftavatar import atomic
from swiftavatar.metrics.vgg_hed import file_sha256
from swiftavatar.models.generator import SemanticGenerator
from swiftavatar.production.mean_latent import modified_mean_latent


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cache_path(checkpoint: str | Path, n: int, seed: int) -> Path:
    """The cache file of (n, seed) beside `checkpoint`, named by its content hash."""
    p = Path(checkpoint)
    return p.with_name(f"{p.name}.w_tilde-{file_sha256(p)[:16]}-n{n}-s{seed}.pt")


def compute_entry(G: SemanticGenerator, n: int, seed: int) -> dict[str, Any]:
    """A w~_mean entry (the layout checkpoints store) from n draws seeded by `seed`."""
    mod = modified_mean_latent(G, n=n, seed=seed)
    return {"n": int(n), "seed": int(seed), "w": mod.w.detach().float().cpu(),
            "rule": mod.rule, "threshold": float(mod.threshold), "kept": int(mod.kept.sum())}


def _shipped(path: str | Path) -> bool:
    from swiftavatar import pretrained

    return Path(path).resolve().parent == Path(pretrained.__file__).resolve().parent


def _usable(entry: Any, G: SemanticGenerator, n: int, seed: int) -> bool:
    return (isinstance(entry, dict) and entry.get("n") == n and entry.get("seed") == seed
            and isinstance(entry.get("w"), torch.Tensor)
            and tuple(entry["w"].shape) == (1, G.config.style_dim))


def w_tilde_entry(G: SemanticGenerator, meta: dict[str, Any], *, n: int, seed: int,
                  say: Callable[[str], None] = _stderr) -> tuple[dict[str, Any], str]:
    """(entry, where it came from: 'checkpoint', 'cache' or 'computed') for G_avatar `G` with
    load_generator's `meta` (its path and stored entries)."""
    for entry in meta.get("w_tilde") or []:
        if _usable(entry, G, n, seed):
            return entry, "checkpoint"
    path = meta.get("path")
    cache = (cache_path(path, n, seed) if path and Path(path).is_file() and not _shipped(path)
             else None)
    if cache is not None and cache.is_file():
        try:
            entry = torch.load(cache, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged cache is recomputed
            say(f"w~_mean cache {cache} unreadable ({err}); computing it again")
        else:
            if _usable(entry, G, n, seed):
                say(f"w~_mean ({n} draws, seed {seed}) read from the cache {cache}")
                return entry, "cache"
    say(f"w~_mean: {path} stores none for {n} draws, seed {seed}; computing it once"
        + (f" (cached in {cache})" if cache is not None else ""))
    entry = compute_entry(G, n, seed)
    if cache is not None:
        try:
            atomic.torch_save(cache, entry)
        except OSError as err:
            say(f"w~_mean not cached: cannot write {cache} ({err}); it is computed again on "
                f"the next run")
    return entry, "computed"


def store_w_tilde(checkpoint: str | Path, draws: Sequence[tuple[int, int]]) -> list[dict]:
    """Compute w~_mean for each (n, seed) of `draws` (on the CPU, where produce plans) and
    store the entries in the checkpoint file (rewritten atomically): a G_avatar's release."""
    from swiftavatar.training.checkpoint import load_generator, with_w_tilde

    path = Path(checkpoint)
    G, _ = load_generator(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    entries = [compute_entry(G, n, seed) for n, seed in draws]
    for entry in entries:
        payload = with_w_tilde(payload, entry)
    atomic.torch_save(path, payload)
    return entries


__all__ = ["cache_path", "compute_entry", "store_w_tilde", "w_tilde_entry"]
