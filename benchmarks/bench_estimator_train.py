"""Benchmark: avatar-estimator training on Ray Train, per-epoch cost of the data path and of
the worker layout. Prints a table; not a test.

    python benchmarks/bench_estimator_train.py [--data DIR] [--rows 1024] [--epochs 3]

Each configuration trains the embedded estimator (64 px) for --epochs on the same rows in a
fresh run directory on one local Ray instance, and reports the wall time of `fit()` and the
mean epoch time after the first (the first epoch also pays worker start and, when
materialized, the one decode): streaming (Parquet read + PNG decode every epoch) against
materialized (decoded once into the object store), and 2 DDP workers x 1 torch thread against
1 worker x 2 threads. Without --data a toon render dataset of --rows rows at 64 px is made
first (about 10 s).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

LAYOUTS = {"2 workers x 1 thread": dict(num_workers=2, cpus_per_worker=0.5, torch_threads=1),
           "1 worker x 2 threads": dict(num_workers=1, cpus_per_worker=1.0, torch_threads=2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="a render or pairs dataset (default: make one)")
    ap.add_argument("--rows", type=int, default=1024, help="rows of the made dataset")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per configuration (>= 2)")
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs must be >= 2 (the first epoch is reported apart)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
    import ray

    from actors.render_stage import RenderConfig, run_render_stage
    from actors.train_estimator import run_estimator_training
    from swiftavatar.estimator.config import EstimatorTrainConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench-est-"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        data = args.data
        if data is None:
            data = str(tmp / "renders")
            run_render_stage(RenderConfig(engine="toon", out=data, count=args.rows, seed=0,
                                          size=64, shard_size=256, workers=2,
                                          cpus_per_worker=0.5))
        load = os.getloadavg()[0]
        rows = []
        for layout, kw in LAYOUTS.items():
            for materialize_mb in (0, 1024):
                out = tmp / f"run{len(rows)}"
                cfg = EstimatorTrainConfig.embedded(data=data, out=str(out), augmented=False,
                                                    epochs=args.epochs, progress=False,
                                                    val_fraction=0.05, **kw)
                cfg = replace(cfg, materialize_mb=materialize_mb)
                t0 = time.perf_counter()
                summary = run_estimator_training(cfg)
                wall = time.perf_counter() - t0
                hist = [json.loads(p.read_text())["metrics"]["epoch_s"] for p in
                        sorted((out / "train").glob("checkpoint_*/meta.json"))]
                later = hist[1:] or hist
                rows.append((layout, "materialized" if summary["data"]["materialized"]
                             else "streaming", summary["data"]["rows_train"], wall,
                             sum(later) / len(later)))
        print(f"\nestimator training, {args.epochs} epochs, 64 px, batch 64; load average at "
              f"start {load:.1f} on {os.cpu_count()} CPUs")
        print("| layout | data path | train rows | fit() wall s | epoch s (after the first) |")
        print("|---|---|---:|---:|---:|")
        for layout, path, n, wall, ep in rows:
            print(f"| {layout} | {path} | {n} | {wall:.1f} | {ep:.2f} |")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
