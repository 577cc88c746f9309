"""Which engines the main job runs: any engine spec (a registered name, an entry point,
'module:Class' or grpc://HOST:PORT), the directory each one's stages write to, and what the
report says about an engine without a designer."""
from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from actors.main_job import DemoConfig


def engine_keys(specs: Iterable[str]) -> dict[str, str]:
    """{spec: key}: the key names the engine's directories (OUT/render/<key>, ...) and its
    report rows. A registered name is its own key; any other spec is built once and keyed by
    its schema's engine name (a gRPC engine's stays the same when its address changes), made
    safe for a path. Two specs of one engine are refused."""
    from swiftavatar.engines.registry import available_engines, get_engine

    registered = available_engines()
    keys: dict[str, str] = {}
    for spec in dict.fromkeys(specs):
        if spec in registered:
            key = spec
        else:
            with get_engine(spec) as engine:
                key = re.sub(r"[^A-Za-z0-9._-]+", "_", engine.schema.engine).strip("._") or "engine"
        clash = [s for s, k in keys.items() if k == key]
        if clash:
            raise ValueError(f"engines {clash[0]!r} and {spec!r} are both engine {key!r}: "
                             f"give each engine once")
        keys[spec] = key
    return keys


def with_engines(cfg: "DemoConfig", specs: list[str]) -> "DemoConfig":
    """The config for these engines, in this order. An engine of the preset keeps its runs
    (in the quick preset only `toon` is produced); any other spec is rendered and produced
    like the preset's first engine (the same counts and sizes), with a G_avatar finetuned
    for it unless `finetune` says never."""
    from swiftavatar.engines.registry import check_engine_spec

    for spec in specs:
        check_engine_spec(spec)
    if len(set(specs)) != len(specs):
        raise ValueError(f"an engine is named twice in {', '.join(specs)}")
    renders = {r.engine: r for r in cfg.engines}
    produced = {p.engine: p for p in cfg.produce}
    render_like, produce_like = cfg.engines[0], (cfg.produce or (None,))[0]
    engines, produce = [], []
    for spec in specs:
        engines.append(renders.get(spec) or dataclasses.replace(render_like, engine=spec))
        if spec in produced:
            produce.append(produced[spec])
        elif spec not in renders and produce_like is not None:
            produce.append(dataclasses.replace(produce_like, engine=spec, g_avatar=None))
    return dataclasses.replace(cfg, engines=tuple(engines), produce=tuple(produce))


def no_designer_note(key: str) -> str:
    """The report's line for an engine without a designer."""
    return (f"engine {key}: no designer exists for it, so the rows scored against the "
            f"designer on held-out faces (the three methods, the reference rows, the shifted "
            f"faces; paper Table 3's LPIPS) are left out; its table keeps the Baseline on "
            f"held-out engine renders, and Figure 6 has no designer column. Register a "
            f"designer (swiftavatar.evaluation.register_designer, or the entry-point group "
            f"'swiftavatar.designers') to get them.")


__all__ = ["engine_keys", "no_designer_note", "with_engines"]
