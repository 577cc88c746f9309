"""Benchmark: engines and the Ray rendering stage. Prints a table; not a test.

    python benchmarks/bench_render.py [--count 1024] [--size 256]

Rows:
  toon renders/s on ONE core (this process pinned to one CPU) at 64/128/256/512 px;
  avataaars renders/s on one core at 256 px;
  the rendering stage (sample + render + PNG + Parquet) as a plain in-process loop, then on Ray
  with 1 and 2 actors (Ray already started; actor start-up included), with ratios;
  the gRPC engine (server in a separate process on 127.0.0.1, client with its defaults:
  pipelined requests, raw pixels) against the same engine in process, with the ratio (best of
  --rounds alternating runs each).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from swiftavatar.engines.registry import EngineSpec, get_engine


def engine_rate(name: str, size: int, n: int, batch: int = 32) -> float:
    engine = get_engine(name)
    vecs = engine.schema.sample(seed=1, ids=range(n))
    engine.render(vecs.select(range(min(8, n))), size)  # warm-up
    t0 = time.perf_counter()
    for lo in range(0, n, batch):
        engine.render(vecs.select(range(lo, min(n, lo + batch))), size)
    return n / (time.perf_counter() - t0)


def one_core_rates(args: argparse.Namespace) -> list[tuple[str, float]]:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rows = []
    for size in (64, 128, 256, 512):
        n = args.count if size <= 256 else args.count // 4
        rows.append((f"toon renders/s, 1 core, {size}px", engine_rate("toon", size, n)))
    rows.append((f"avataaars renders/s, 1 core, {args.size}px",
                 engine_rate("avataaars", args.size, max(64, args.count // 8))))
    return rows


def stage_rates(args: argparse.Namespace) -> list[tuple[str, float]]:
    import ray

    from actors.render_stage import RenderConfig, plan_render, run_render_stage
    from actors.renderer import EngineRenderer, RenderJob

    n, shard = args.count, args.shard_size
    tmp = tempfile.mkdtemp(prefix="bench-render-")
    rows = []
    try:
        # Plain loop: the same per-shard work as an actor does, in this process.
        cfg = RenderConfig(engine="toon", out=os.path.join(tmp, "loop"), count=n,
                           size=args.size, shard_size=shard, progress=False)
        plan = plan_render(cfg)
        job = RenderJob(engine=EngineSpec("toon"), out=cfg.out, seed=cfg.seed, size=cfg.size,
                        render_batch=cfg.render_batch, schema_fingerprint=plan.schema.fingerprint)
        os.makedirs(os.path.join(cfg.out, "shards"), exist_ok=True)
        t0 = time.perf_counter()
        worker = EngineRenderer(job)
        for k in range(plan.num_shards):
            worker.render_shard(k, *plan.shard_range(k))
        loop = n / (time.perf_counter() - t0)
        rows.append((f"stage rows/s, plain loop (1 process), {args.size}px", loop))

        ray.init(address="local", num_cpus=2, include_dashboard=False,
                 object_store_memory=256 * 1024 ** 2)
        for workers in (1, 2):
            cfg = RenderConfig(engine="toon", out=os.path.join(tmp, f"ray{workers}"), count=n,
                               size=args.size, shard_size=shard, workers=workers,
                               progress=False)
            t0 = time.perf_counter()
            s = run_render_stage(cfg)
            assert s.rendered == n, s
            rate = n / (time.perf_counter() - t0)
            rows.append((f"stage rows/s, Ray, {workers} actor(s)", rate))
            rows.append(("  ratio to plain loop", rate / loop))
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def grpc_ratio(args: argparse.Namespace) -> list[tuple[str, float]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "swiftavatar", "engine", "serve", "toon",
                               "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # never read: a pipe could fill
    remote = None
    try:
        deadline = time.time() + 60
        while remote is None:
            try:
                remote = get_engine("grpc", address=f"127.0.0.1:{port}", retries=1)
            except Exception:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        local = get_engine("toon")
        n = max(64, args.count // 2)
        vecs = local.schema.sample(seed=2, ids=range(n))
        out: dict[str, float] = {}
        images = {}
        for name, eng in (("in-process", local), ("gRPC", remote)):
            eng.render(vecs.select(range(8)), args.size)  # warm-up
        for _ in range(args.rounds):  # alternate, best of each: load drifts on a shared machine
            for name, eng in (("in-process", local), ("gRPC", remote)):
                t0 = time.perf_counter()
                images[name] = eng.render(vecs, args.size).images
                out[name] = max(out.get(name, 0.0), n / (time.perf_counter() - t0))
        assert np.array_equal(images["in-process"], images["gRPC"]), "gRPC pixels differ"
        return [(f"toon renders/s in process, {args.size}px", out["in-process"]),
                (f"toon renders/s over gRPC (127.0.0.1), {args.size}px", out["gRPC"]),
                ("  ratio gRPC / in-process", out["gRPC"] / out["in-process"])]
    finally:
        if remote is not None:
            remote.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1024, help="renders per measurement")
    p.add_argument("--size", type=int, default=256, help="render size for stage/gRPC rows")
    p.add_argument("--shard-size", type=int, default=128, help="rows per shard in the stage")
    p.add_argument("--rounds", type=int, default=3, help="alternating gRPC / in-process runs")
    p.add_argument("--section", choices=("all", "engines", "stage", "grpc"), default="all")
    args = p.parse_args()
    if args.section == "all":  # engines in a child pinned to one core; the rest here
        cmd = [sys.executable, __file__, "--section", "engines", "--count", str(args.count),
               "--size", str(args.size)]
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout, end="")
        rows = stage_rates(args) + grpc_ratio(args)
    else:
        rows = {"engines": one_core_rates, "stage": stage_rates, "grpc": grpc_ratio}[
            args.section](args)
    for name, v in rows:
        print(f"{name:<52} {v:10.2f}")


if __name__ == "__main__":
    main()
