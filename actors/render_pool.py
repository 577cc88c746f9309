"""The Ray Data actor pools of the shard stages: shard descriptors in, one summary row per shard
out, with a progress bar that counts shards. Render runs one pool (`actors.renderer.
EngineRenderer`, which writes the shards); production two, render actors feeding inversion
actors (`actors.produce_stage`). The stages plan, these run."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from actors.resources import check_actor_resources


class RenderStageError(RuntimeError):
    """The stage stopped; finished shards are kept and a re-run continues."""


@dataclass(frozen=True)
class PoolStep:
    """One actor pool of a pipeline: `fn(job=job)` per actor (a Ray Data callable class),
    called with one shard's row at a time."""

    fn: type
    job: Any
    cpus: float
    gpus: float = 0.0
    max_size: int = 1
    min_size: int = 1


def worker_pool(plan: Any, fn: type, job: Any, todo: list[int]) -> PoolStep:
    """The pool of `plan.config`'s workers (`workers`, `min_workers`, `cpus_per_worker`,
    `gpus_per_worker`), never larger than the shards to do."""
    cfg = plan.config
    size = min(cfg.workers, len(todo))
    return PoolStep(fn, job, cfg.cpus_per_worker, cfg.gpus_per_worker, size,
                    min(cfg.min_workers or cfg.workers, size))


def run_pool(plan: Any, job: Any, todo: list[int], retry: Sequence[int] = ()
              ) -> list[dict[str, Any]]:
    """Render the shards `todo` in a Ray Data actor pool, and retry the error rows of the
    finished shards `retry`; one summary dict per shard. Raises RenderStageError when a shard
    failed or the pool could not run."""
    from actors.renderer import EngineRenderer

    todo = [*todo, *retry]
    results, crash = run_steps(plan, [worker_pool(plan, EngineRenderer, job, todo)], todo,
                               desc=f"render {plan.spec.name}", counts=("rows", "errors"),
                               retry=set(retry))
    why = unfinished(results, crash, todo)
    if why:
        raise RenderStageError(why)
    return results


def run_steps(plan: Any, steps: Sequence[PoolStep], todo: list[int], *, desc: str,
              counts: Sequence[str], retry: set[int] | None = None
              ) -> tuple[list[dict[str, Any]], str | None]:
    """Run the descriptors of the shards `todo` through the actor pools `steps`, one after the
    other, and collect the last one's summary rows (their `counts` columns summed on the
    progress bar); the shards in `retry` are marked so (see shard_items). Returns
    (summaries, None), or (summaries so far, the root cause) when the pipeline stopped."""
    import gc

    import ray

    check_actor_resources(plan.config)
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats)
    ctx.enable_progress_bars = False  # our own bar counts shards
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    try:
        ds = ray.data.from_items(shard_items(plan, todo, retry), override_num_blocks=len(todo))
        for step in steps:
            ds = ds.map_batches(
                step.fn, fn_constructor_kwargs={"job": step.job}, batch_size=1,
                batch_format="pyarrow", num_cpus=step.cpus, num_gpus=step.gpus or None,
                compute=ray.data.ActorPoolStrategy(min_size=step.min_size,
                                                   max_size=step.max_size))
        return _collect(ds, len(todo), desc, counts, plan.config.progress)
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.enable_auto_log_stats = saved
        # An execution that stopped early frees its actor pools only when garbage-collected.
        gc.collect()


def shard_items(plan: Any, todo: list[int], retry: set[int] | None = None
                ) -> list[dict[str, Any]]:
    """The descriptor (shard, start, stop[, lines][, retry]) of each shard to do; with
    `retry`, every descriptor says whether its shard is one whose error rows are retried."""
    items = []
    for k in todo:
        start, stop = plan.shard_range(k)
        item: dict[str, Any] = {"shard": k, "start": start, "stop": stop}
        if getattr(plan, "lines", None) is not None:  # render --vectors: the shard's lines
            item["lines"] = plan.lines[start:stop]
        if retry is not None:
            item["retry"] = k in retry
        items.append(item)
    return items


def _collect(ds: Any, total: int, desc: str, counts: Sequence[str], progress: bool
             ) -> tuple[list[dict[str, Any]], str | None]:
    from tqdm.auto import tqdm

    results: list[dict[str, Any]] = []
    shown = {key: 0 for key in (*counts, "failed")}
    it = iter(ds.iter_rows())
    try:
        with tqdm(total=total, unit="shard", desc=desc, disable=not progress) as bar:
            for r in it:
                results.append(dict(r))
                for key in counts:
                    shown[key] += int(r[key])
                shown["failed"] += r["status"] == "failed"
                bar.update(1)
                bar.set_postfix(shown, refresh=False)
    except Exception as e:  # noqa: BLE001 - e.g. the engine cannot be built on a worker
        return results, root_cause(e)
    finally:
        it.close()
    return results, None


def unfinished(results: list[dict[str, Any]], crash: str | None, todo: list[int]) -> str | None:
    """None when every shard of `todo` finished, else what to tell the user: how many did
    not, the first reason, and that a re-run continues."""
    failed = [r for r in results if r["status"] == "failed"]
    if not crash and not failed:
        return None
    why = crash or f"shard {failed[0]['shard']}: {failed[0]['error']}"
    done = sum(r["status"] in ("written", "skipped", "retried") for r in results)
    return (f"{len(todo) - done} of {len(todo)} shards did not finish ({why}); finished shards "
            f"are kept, re-run the same command to continue")


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


__all__ = ["PoolStep", "RenderStageError", "root_cause", "run_pool", "run_steps", "shard_items",
           "unfinished", "worker_pool"]
