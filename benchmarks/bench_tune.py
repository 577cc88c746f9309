"""Benchmark: the overhead of Ray Tune on one fixed sweep trial. Prints a table; not a test.

    python benchmarks/bench_tune.py [--pairs DIR] [--epochs 2] [--repeats 2] [--size 32]

The same trial (fixed estimator.lambda_d, no dataset stage, `--epochs` estimator epochs with
the validation LPIPS after each) runs `--repeats` times each way, alternating:
* alone: `tune.trial.train_trial` called from the driver (Ray Train's TorchTrainer, Ray Data
  ingest, per-epoch validation; no Tune);
* tune: a one-trial sweep through `tune.runner.build_tuner` + `Tuner.fit()` (trial actor,
  TuneReportCallback, ASHA, experiment state, the results files not included).
Both share one local Ray instance started beforehand (its start-up is in neither). Without
--pairs a small toon paired dataset (--samples x 3 rows at --size px) is written to a temp dir.
Wall-clock seconds; the ratio is tune / alone (medians). The load average is printed: on a
shared machine the numbers move with it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))          # the synthetic pairs writer


def fixed_spec(pairs: str, epochs: int, size: int, val_count: int):
    from tune.spec import spec_from_dict

    return spec_from_dict({
        "name": "bench", "data": {"pairs": pairs},
        "params": {"estimator.lambda_d": 10.0},
        "budget": {"epochs": epochs, "num_samples": 1, "max_concurrent_trials": 1},
        "validation": {"count": val_count, "size": max(size, 32)},
        "estimator": {"model": {"input_size": size, "pretrained": None}, "batch": 16,
                      "num_workers": 1, "cpus_per_worker": 0.5, "torch_threads": 1}})


def run_alone(spec, root: Path, k: int) -> float:
    from tune.trial import train_trial

    t0 = time.perf_counter()
    train_trial(spec, {p.name: p.args[0] for p in spec.params}, root / f"alone{k}",
                str(root / "cache"))
    return time.perf_counter() - t0


def run_tuned(spec, root: Path, k: int) -> float:
    from dataclasses import replace

    from tune.runner import SweepPaths, build_tuner

    spec = replace(spec, name=f"tuned{k}")
    t0 = time.perf_counter()
    tuner, _ = build_tuner(spec, SweepPaths.of(spec, root))
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    if grid.num_errors:
        raise RuntimeError(f"the tuned trial failed: {grid.errors[0]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=None, help="paired dataset (default: a synthetic one)")
    ap.add_argument("--epochs", type=int, default=2, help="estimator epochs per trial")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each mode")
    ap.add_argument("--size", type=int, default=32, help="estimator input size (px)")
    ap.add_argument("--samples", type=int, default=32, help="synthetic samples (no --pairs)")
    ap.add_argument("--val-count", type=int, default=16, help="validation faces")
    args = ap.parse_args()

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO),
                                                os.environ.get("PYTHONPATH", "")])
    import ray

    root = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    try:
        if args.pairs:
            pairs = os.path.abspath(args.pairs)
        else:
            from synthetic import write_toon_pairs

            pairs = str(write_toon_pairs(root / "pairs", n=args.samples, shard_size=16))
        spec = fixed_spec(pairs, args.epochs, args.size, args.val_count)
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 object_store_memory=512 * 2 ** 20, _temp_dir=str(root / "ray"),
                 log_to_driver=False)
        load0 = os.getloadavg()[0]
        times: dict[str, list[float]] = {"alone": [], "tune": []}
        for k in range(args.repeats):
            times["alone"].append(run_alone(spec, root, k))
            times["tune"].append(run_tuned(spec, root, k))
            print(f"repeat {k + 1}/{args.repeats}: alone {times['alone'][-1]:.1f} s, tune "
                  f"{times['tune'][-1]:.1f} s", file=sys.stderr, flush=True)
        load1 = os.getloadavg()[0]
        ray.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = statistics.median(times["alone"])
    print(f"\nOne fixed trial ({args.epochs} epochs, estimator at {args.size} px, "
          f"{'data ' + args.pairs if args.pairs else f'{args.samples} synthetic samples'}, "
          f"{args.val_count} validation faces); {os.cpu_count()} CPUs, load average "
          f"{load0:.1f} -> {load1:.1f}\n")
    print("| mode | runs | wall s (median) | wall s (min) | ratio to alone |")
    print("|---|---|---|---|---|")
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"| {mode} | {len(ts)} | {med:.1f} | {min(ts):.1f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
