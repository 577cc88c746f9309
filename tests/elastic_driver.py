"""Driver of the cluster-elasticity test; runs as its own process (`python -m elastic_driver`)
so that its `ray.cluster_utils.Cluster` cannot meet the test session's Ray instance.

It starts a 2-CPU head and a 2-CPU node B and runs a small paired-data production whose
inversion pool may grow (min 1, max `--workers` actors of 1.5 CPU: one per node). While
production runs it waits for the pool to grow onto B, adds a 2-CPU node C and at once removes
B without grace (its processes are SIGKILLed): B's actor is restarted on C, the only node with
room, where its unfinished shards are retried. It writes a JSON result: the dataset card, the
node ids, the timeline, the shards finished at each event, and the inversion tasks each node
finished (Ray's state API, read after the run).
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

INVERTER = "ShardInverter"  # the inversion actor class, in Ray Data's actor and task names
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.events: list[tuple[float, str]] = []

    def __call__(self, what: str) -> None:
        t = round(time.monotonic() - self.t0, 2)
        self.events.append((t, what))
        print(f"[elastic {t:7.2f}s] {what}", file=sys.stderr, flush=True)


def inverter_actor_nodes(alive_only: bool = True) -> dict[str, int]:
    """{node id: inversion actors} from the GCS actor table."""
    from ray._private import state

    found: dict[str, int] = {}
    for a in state.actors().values():
        if INVERTER not in a.get("ActorClassName", ""):
            continue
        if alive_only and a.get("State") != "ALIVE":
            continue
        node = (a.get("Address") or {}).get("NodeID")
        if node:
            found[node] = found.get(node, 0) + 1
    return found


def wait_until(cond, timeout_s: float, what: str, log: Timeline, done: threading.Event) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        if done.is_set():
            log(f"production ended before: {what}")
            return False
        time.sleep(0.2)
    log(f"timed out waiting for: {what}")
    return False


def finished_tasks_by_node(dashboard_url: str) -> dict[str, int]:
    """{node id: inversion tasks that finished there}, from Ray's state API."""
    from ray.util.state import list_tasks

    tasks = list_tasks(address=dashboard_url, filters=[("state", "=", "FINISHED")],
                       limit=10_000, raise_on_missing_output=False)
    out: dict[str, int] = {}
    for t in tasks:
        if INVERTER in t.name and t.name.endswith(".submit") and t.node_id:
            out[t.node_id] = out.get(t.node_id, 0) + 1
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    from actors.produce_stage import run_produce_stage
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig, produce_inversion
    from engines_for_tests import TARGET
    from swiftavatar import shards
    from synthetic import NO_BROKEN

    log = Timeline()
    if args.verbose:  # Ray Data's scaling decisions, on stderr
        import logging

        pool_log = logging.getLogger(
            "ray.data._internal.execution.operators.actor_pool_map_operator")
        pool_log.setLevel(logging.DEBUG)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[ray data %(relativeCreated)7d ms] %(message)s"))
        pool_log.addHandler(handler)
    mib = 2 ** 20
    dash_port = free_port()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "object_store_memory": 128 * mib, "include_dashboard": True,
        "dashboard_host": "127.0.0.1", "dashboard_port": dash_port,
        # notice a removed node within about 2 s (defaults: about 15 s)
        "_system_config": {"health_check_period_ms": 500, "health_check_timeout_ms": 500,
                           "health_check_failure_threshold": 3}})
    result: dict[str, Any] = {"events": log.events}
    try:
        log("head up")
        node_b = cluster.add_node(num_cpus=2, object_store_memory=96 * mib)
        log("node B up")
        ray.init(address=cluster.address, log_to_driver=False)
        head_id, b_id = cluster.head_node.node_id, node_b.node_id
        config = ProduceConfig(
            engine=TARGET, out=args.out, g_avatar=args.g_avatar, g_real=args.g_real,
            count=args.count, seed=7, shard_size=args.shard_size, prior=NO_BROKEN,
            inversion=produce_inversion(steps=args.steps, n_mean=64),
            augment=AugmentConfig(num_augmentations=2), lpips_backbone="random",
            lpips_allow_random=True, workers=args.workers, min_workers=1, cpus_per_worker=1.5,
            batch_size=args.shard_size, render_batch=8, progress=False)
        fs, base = shards.resolve(args.out)

        def shards_done() -> int:
            return len(shards.list_shards(fs, shards.join(base, "pairs")))

        done = threading.Event()
        outcome: dict[str, Any] = {}

        def produce() -> None:
            try:
                outcome["card"] = run_produce_stage(config)
            except BaseException as e:  # noqa: BLE001 - reported in the result
                outcome["error"] = "".join(traceback.format_exception(e))
            finally:
                done.set()

        worker = threading.Thread(target=produce, name="produce")
        worker.start()
        log("production started")
        at: dict[str, int] = {}
        wait_until(lambda: inverter_actor_nodes().get(b_id, 0) > 0, args.wait_s,
                   "an inversion actor on B", log, done)
        at["b_actor_alive"] = shards_done()
        log(f"inversion actors {inverter_actor_nodes()} ({at['b_actor_alive']} shards done)")
        node_c = cluster.add_node(num_cpus=2, object_store_memory=96 * mib)
        c_id = node_c.node_id
        at["node_added"] = shards_done()
        log(f"node C up ({at['node_added']} shards done)")
        on_b = inverter_actor_nodes().get(b_id, 0)
        cluster.remove_node(node_b, allow_graceful=False)
        at["node_removed"] = shards_done()
        log(f"node B removed ({at['node_removed']} shards done)")
        worker.join(timeout=args.run_timeout_s)
        if worker.is_alive():
            raise TimeoutError(f"production did not finish within {args.run_timeout_s} s")
        log("production finished" if "card" in outcome else "production failed")
        time.sleep(1.5)  # task events reach the GCS once a second
        by_node = finished_tasks_by_node(cluster.webui_url if cluster.webui_url.startswith(
            "http") else f"http://{cluster.webui_url}")
        log(f"finished inversion tasks by node {by_node}")
        result.update({
            "card": outcome.get("card"), "error": outcome.get("error"),
            "nodes": {"head": head_id, "b": b_id, "c": c_id}, "shards_done_at": at,
            "actors_on_b_when_removed": on_b,
            "tasks_by_node": by_node,
            "actors_by_node": inverter_actor_nodes(alive_only=False)})
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        log("cluster shut down")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="elastic_driver", description=__doc__)
    p.add_argument("--out", required=True, help="production output directory")
    p.add_argument("--result", required=True, help="JSON result file")
    p.add_argument("--g-avatar", required=True)
    p.add_argument("--g-real", required=True)
    p.add_argument("--count", type=int, default=96)
    p.add_argument("--shard-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--wait-s", type=float, default=90.0, help="longest wait for each event")
    p.add_argument("--run-timeout-s", type=float, default=120.0)
    p.add_argument("--verbose", action="store_true", help="log Ray Data's scaling decisions")
    args = p.parse_args(argv)
    result = run(args)
    tmp = Path(args.result).with_name(Path(args.result).name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(args.result)
    return 0 if result.get("card") else 1


if __name__ == "__main__":
    sys.exit(main())
