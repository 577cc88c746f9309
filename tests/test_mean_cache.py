"""w~_mean, computed once per G_avatar: read from the checkpoint when it stores one, else from a
cache file beside it keyed by the checkpoint's content hash, else computed and cached. Tiny
32-px generators written with the real checkpoint writer."""
from __future__ import annotations

import torch

from synthetic import write_tiny_generators
from swiftavatar.production.mean_cache import cache_path, compute_entry, w_tilde_entry
from swiftavatar.training.checkpoint import (CHECKPOINT_FILE, load_generator, read_checkpoint,
                                             save_checkpoint, with_w_tilde)

N, SEED = 64, 3


def _marked(entry: dict, value: float) -> dict:
    """The entry with a w no computation gives: finding it proves it was read, not made."""
    return {**entry, "w": torch.full_like(entry["w"], value)}


def test_stored_w_tilde_is_read_from_the_checkpoint_and_nothing_is_cached(tmp_path):
    g_dir, _ = write_tiny_generators(tmp_path / "gens")
    G, meta = load_generator(g_dir)
    assert meta["w_tilde"] == []                          # written before any was stored
    entry = compute_entry(G, N, SEED)
    payload = with_w_tilde(read_checkpoint(g_dir), _marked(entry, 7.0))
    save_checkpoint(tmp_path / "released", payload)
    G2, meta2 = load_generator(tmp_path / "released")    # weights_only=True load
    said: list[str] = []
    got, source = w_tilde_entry(G2, meta2, n=N, seed=SEED, say=said.append)
    assert source == "checkpoint" and torch.all(got["w"] == 7.0) and said == []
    assert not list((tmp_path / "released").glob("*.w_tilde-*"))
    # other draws than the stored ones are not served the stored mean
    other, source = w_tilde_entry(G2, meta2, n=N, seed=SEED + 1, say=said.append)
    assert source == "computed" and not torch.all(other["w"] == 7.0)


def test_cache_beside_the_checkpoint_is_used_and_a_changed_checkpoint_is_not_served(tmp_path):
    g_dir, _ = write_tiny_generators(tmp_path / "gens")
    G, meta = load_generator(g_dir)
    said: list[str] = []
    first, source = w_tilde_entry(G, meta, n=N, seed=SEED, say=said.append)
    cache = cache_path(meta["path"], N, SEED)
    assert source == "computed" and cache.is_file() and "computing it once" in said[-1]
    torch.testing.assert_close(first["w"], compute_entry(G, N, SEED)["w"], rtol=0, atol=0)
    assert not list(cache.parent.glob(".*tmp*"))            # written atomically
    # a second run reads the cache (marked, so a recomputation would show)
    torch.save(_marked(first, 5.0), cache)
    again, source = w_tilde_entry(G, meta, n=N, seed=SEED, say=said.append)
    assert source == "cache" and torch.all(again["w"] == 5.0) and str(cache) in said[-1]
    # the checkpoint changes (another G at the same path): its hash, so its cache, changes
    payload = read_checkpoint(g_dir)
    payload["g_ema"] = {k: v + 0.01 if v.is_floating_point() else v
                        for k, v in payload["g_ema"].items()}
    save_checkpoint(g_dir, payload)
    G3, meta3 = load_generator(g_dir)
    assert meta3["path"] == meta["path"] and meta3["path"].endswith(CHECKPOINT_FILE)
    fresh, source = w_tilde_entry(G3, meta3, n=N, seed=SEED, say=said.append)
    assert source == "computed" and not torch.all(fresh["w"] == 5.0)
    torch.testing.assert_close(fresh["w"], compute_entry(G3, N, SEED)["w"], rtol=0, atol=0)
    assert cache_path(meta3["path"], N, SEED) != cache


def test_produce_plans_compute_w_tilde_once_then_read_it(tmp_path):
    from engines_for_tests import TARGET
    from swiftavatar.production.config import ProduceConfig, produce_inversion
    from swiftavatar.production.plan import plan_produce

    g_a, g_r = write_tiny_generators(tmp_path / "gens")
    config = ProduceConfig(engine=TARGET, out=str(tmp_path / "o"), g_avatar=g_a, g_real=g_r,
                           count=2, seed=SEED, inversion=produce_inversion(n_mean=N),
                           lpips_backbone="random", lpips_allow_random=True, progress=False)
    first, second = plan_produce(config), plan_produce(config)
    assert (first.w_init["source"], second.w_init["source"]) == ("computed", "cache")
    assert first.job.w_tilde == second.job.w_tilde
    assert first.manifest == second.manifest              # the same dataset: a re-run resumes
