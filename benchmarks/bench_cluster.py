"""Benchmark: paired-data production rows/s on a `ray.cluster_utils.Cluster` of 1 node and of 2
nodes (every node a raylet on this machine, 2 logical CPUs each). Prints a table; not a test.

    python benchmarks/bench_cluster.py [--count 48] [--shard-size 8] [--steps 20]
                                       [--augmentations 10] [--node-cpus 2]

Each cluster size runs in its own process (`--one N`) with its own RAY_TMPDIR, so the two
clusters never meet each other or any other Ray instance on the machine. The stage is
`actors.produce_stage.run_produce_stage` with the shipped generators
(pretrained:g_avatar_toon_64 / pretrained:g_real_64), the toon engine and the LPIPS backbone the
metric finds; the inversion pool has 2 actors of 0.5 CPU per node (fixed size, so both runs
start with a full pool). Rows are pair rows written (samples x (1 + augmentations)).

Columns: wall is the whole stage call (planning, actor start-up, the Parquet writes);
steady rows/s counts the rows of every shard but the first over the time between the first
and the last shard file (start-up excluded). Each node's logical CPUs are not physical
cores: on a machine with fewer cores than the cluster's CPUs, a second node adds actors and
scheduling slots but no compute, so the ratio is not compute scaling.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 2 ** 20
ACTORS_PER_NODE = 2
INVERTER = "ShardInverter"


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One production on a fresh cluster of `args.one` nodes; the measurements as a dict."""
    import ray
    from ray._private import state
    from ray.cluster_utils import Cluster

    from actors.produce_stage import run_produce_stage
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig, produce_inversion

    nodes = args.one
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": args.node_cpus, "object_store_memory": 256 * MIB,
        "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=args.node_cpus, object_store_memory=256 * MIB)
        ray.init(address=cluster.address, log_to_driver=False)
        out = Path(tempfile.mkdtemp(prefix="bench-cluster-")) / "pairs"
        workers = ACTORS_PER_NODE * nodes
        cfg = ProduceConfig(
            engine="toon", out=str(out), g_avatar="pretrained:g_avatar_toon_64",
            g_real="pretrained:g_real_64", prior="suggested", count=args.count, seed=0,
            shard_size=args.shard_size,
            inversion=produce_inversion(steps=args.steps, n_mean=args.n_mean),
            augment=AugmentConfig(num_augmentations=args.augmentations),
            workers=workers, min_workers=workers,
            cpus_per_worker=0.5, batch_size=args.shard_size, progress=False)
        t0 = time.perf_counter()
        card = run_produce_stage(cfg)
        wall = time.perf_counter() - t0
        per_node: dict[str, int] = {}
        for a in state.actors().values():
            if INVERTER in a.get("ActorClassName", ""):
                node = (a.get("Address") or {}).get("NodeID", "?")[:8]
                per_node[node] = per_node.get(node, 0) + 1
        files = sorted((out / "pairs").glob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
        stamps = [p.stat().st_mtime for p in files]
        rows = card["counts"]["pairs_written"]
        rows_per_shard = rows / max(1, len(files))
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
        if not card["complete"] or rows != args.count * (1 + args.augmentations):
            raise RuntimeError(f"{nodes} node(s): incomplete production {card['counts']}")
        return {"nodes": nodes, "cluster_cpus": ray.cluster_resources().get("CPU", 0),
                "workers": workers, "rows": rows, "wall_s": wall, "rows_per_s": rows / wall,
                "steady_rows_per_s": rows_per_shard * (len(files) - 1) / span,
                "actors_per_node": per_node, "lpips": card["lpips"]["backbone"]}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        if "out" in locals():
            shutil.rmtree(out.parent, ignore_errors=True)


def run_child(nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    result = Path(tempfile.mkdtemp(prefix="bench-cluster-")) / "result.json"
    ray_tmp = tempfile.mkdtemp(prefix="rb-")  # short: Ray's socket paths must stay short
    env = {**os.environ, "RAY_TMPDIR": ray_tmp,
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, __file__, "--one", str(nodes), "--result", str(result),
           "--count", str(args.count), "--shard-size", str(args.shard_size),
           "--steps", str(args.steps), "--augmentations", str(args.augmentations),
           "--n-mean", str(args.n_mean), "--node-cpus", str(args.node_cpus)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
        if done.returncode != 0 or not result.is_file():
            raise RuntimeError(f"{nodes}-node run failed ({done.returncode}):\n"
                               f"{done.stderr[-4000:]}")
        return json.loads(result.read_text())
    finally:
        shutil.rmtree(result.parent, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=48, help="samples (default 48)")
    p.add_argument("--shard-size", type=int, default=8, help="samples per shard (default 8)")
    p.add_argument("--steps", type=int, default=20, help="inversion steps (default 20)")
    p.add_argument("--augmentations", type=int, default=10, help="A per sample (default 10)")
    p.add_argument("--n-mean", type=int, default=1000, help="samples for w~_mean")
    p.add_argument("--node-cpus", type=int, default=2, help="logical CPUs per node")
    p.add_argument("--timeout", type=float, default=1200, help="seconds per cluster size")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one is not None:
        out = run_one(args)
        Path(args.result).write_text(json.dumps(out))
        return 0

    cores = os.cpu_count() or 1
    load0 = os.getloadavg()
    print(f"machine: {cores} cores; load average at start {load0[0]:.2f} / {load0[1]:.2f} / "
          f"{load0[2]:.2f} (1 / 5 / 15 min)")
    print(f"workload: {args.count} samples x (1 + {args.augmentations}) rows, {args.steps} "
          f"inversion steps, shards of {args.shard_size}, toon engine, shipped 64-px "
          f"generators; {ACTORS_PER_NODE} inversion actors of 0.5 CPU per node")
    results = [run_child(n, args) for n in (1, 2)]
    load1 = os.getloadavg()
    print()
    head = (f"{'nodes':>5} {'cluster CPUs':>12} {'actors/node':>16} {'rows':>6} {'wall s':>8} "
            f"{'rows/s':>8} {'steady rows/s':>14}")
    print(head)
    print("-" * len(head))
    for r in results:
        spread = ",".join(str(v) for v in sorted(r["actors_per_node"].values(), reverse=True))
        print(f"{r['nodes']:>5} {r['cluster_cpus']:>12g} {spread:>16} {r['rows']:>6} "
              f"{r['wall_s']:>8.1f} {r['rows_per_s']:>8.2f} {r['steady_rows_per_s']:>14.2f}")
    one, two = results
    print(f"\nratio 2 nodes / 1 node: rows/s {two['rows_per_s'] / one['rows_per_s']:.2f}, "
          f"steady rows/s {two['steady_rows_per_s'] / one['steady_rows_per_s']:.2f}")
    print(f"load average at end {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}; LPIPS "
          f"backbone {one['lpips']}")
    if 2 * args.node_cpus > cores:
        print(f"note: both nodes run on this machine's {cores} cores: the 2-node cluster has "
              f"twice the logical CPUs and actors but no more cores, so this is not compute "
              f"scaling (that needs nodes on separate machines). A ratio above 1 comes from "
              f"more actors overlapping start-up, I/O and idle gaps, and, on a shared machine, "
              f"from more processes taking a larger share of its cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
