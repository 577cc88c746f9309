"""The Ray Data actor pool that renders shards (`actors.render_stage` plans, this runs): shard
descriptors in, one `actors.renderer.EngineRenderer` per actor, one summary row per shard out,
with a progress bar that counts shards. Production runs its render actors the same way."""
from __future__ import annotations

import re
from typing import Any

from actors.resources import check_actor_resources


class RenderStageError(RuntimeError):
    """The stage stopped; finished shards are kept and a re-run continues."""


def run_pool(plan: Any, job: Any, todo: list[int]) -> list[dict[str, Any]]:
    """Render the shards `todo` in a Ray Data actor pool; one summary dict per shard. Raises
    RenderStageError when a shard failed or the pool could not run."""
    import gc

    import ray

    check_actor_resources(plan.config)
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats)
    ctx.enable_progress_bars = False  # our own bar counts shards
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    try:
        results, crash = iterate_pool(plan, job, todo)
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats = saved
        # An execution that stopped early frees its actor pool only when garbage-collected.
        gc.collect()
    failed = [r for r in results if r["status"] == "failed"]
    if crash or failed:
        why = crash or f"shard {failed[0]['shard']}: {failed[0]['error']}"
        n_failed = len(failed) if not crash else len(todo) - len(results) + len(failed)
        raise RenderStageError(
            f"{n_failed} of {len(todo)} shards did not finish ({why}); finished shards are "
            f"kept, re-run the same command to continue")
    return results


def iterate_pool(plan: Any, job: Any, todo: list[int]
                  ) -> tuple[list[dict[str, Any]], str | None]:
    """Run the pool and collect summaries; (summaries, None) or (summaries so far, error)."""
    import ray
    from tqdm.auto import tqdm

    from actors.renderer import EngineRenderer

    cfg = plan.config
    items = []
    for k in todo:
        start, stop = plan.shard_range(k)
        item: dict[str, Any] = {"shard": k, "start": start, "stop": stop}
        if plan.lines is not None:
            item["lines"] = plan.lines[start:stop]
        items.append(item)
    size = min(cfg.workers, len(todo))
    min_size = min(cfg.min_workers or cfg.workers, size)
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        EngineRenderer,
        fn_constructor_kwargs={"job": job},
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=min_size, max_size=size),
        num_cpus=cfg.cpus_per_worker,
        num_gpus=cfg.gpus_per_worker or None,
    )
    results: list[dict[str, Any]] = []
    counts = {"rows": 0, "errors": 0, "failed": 0}
    it = iter(ds.iter_rows())
    try:
        with tqdm(total=len(todo), unit="shard", desc=f"render {plan.spec.name}",
                  disable=not cfg.progress) as bar:
            for r in it:
                results.append(dict(r))
                counts["rows"] += int(r["rows"])
                counts["errors"] += int(r["errors"])
                counts["failed"] += r["status"] == "failed"
                bar.update(1)
                bar.set_postfix(counts, refresh=False)
    except Exception as e:  # noqa: BLE001 - e.g. the engine cannot be built on a worker
        return results, root_cause(e)
    finally:
        it.close()
    return results, None


def root_cause(e: BaseException) -> str:
    """'Type: message' of the worker's original error. Ray wraps it (sometimes in empty
    wrappers) and appends the worker's traceback, whose last line names the original."""
    chain: list[BaseException] = [e]
    while len(chain) < 16:
        inner = getattr(chain[-1], "cause", None) or chain[-1].__cause__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    for err in reversed(chain):  # innermost first
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        if lines:
            m = re.match(r"^(?:[\w.]+\.)?(\w+: .*)$", lines[-1])
            return m.group(1) if m else f"{type(err).__name__}: {lines[-1]}"
    return type(e).__name__


__all__ = ["RenderStageError", "iterate_pool", "root_cause", "run_pool"]
