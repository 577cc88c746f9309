"""Benchmark: avatar-estimator inference (section 3.3) on the CPU beside its FLOPs floor.
Prints a table; not a test.

    python benchmarks/bench_estimator.py [--threads 2] [--sizes 64,224] [--batches 1,64]
                                         [--trunks resnet18,efficientnet_lite0]
                                         [--seconds 3] [--engine toon] [--checkpoint RUN]

For each input size and batch: `net` is the model's forward alone on (B, 3, S, S) float input
(eval, inference mode); `predict` is `predict_images` end to end, from (B, 64, 64, 3) uint8
images (the embedded data resolution; resized to S) to a decoded, valid VectorBatch; `opt`
is the same with `optimize_for_inference(model)` (BatchNorm folded, channels_last), and
images/s, "% floor" and the verdict use it. Times are medians over repeats filling about
--seconds. The floor is FLOPs per image x B at this CPU's measured float32 matmul rate (a
square torch.mm loop at the same thread count); FLOPs are counted with
torch.utils.flop_counter (matmuls and convolutions). Goal: >= 100 Hz at batch 1 at the
embedded resolution (64 px). With --checkpoint the trained model is timed (same cost as a
random one of the same config).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator.checkpoint import load_estimator
from swiftavatar.estimator.model import AvatarEstimator, EstimatorConfig, optimize_for_inference
from swiftavatar.estimator.predict import predict_images

GOAL_HZ = 100.0
DATA_SIZE = 64


def sgemm_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """Measured float32 matmul rate: (n, n) @ (n, n) repeated for about `seconds`."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = torch.empty(n, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b, out=out)
        reps += 1
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def flops_per_image(model: AvatarEstimator, size: int) -> float:
    x = torch.zeros(1, 3, size, size)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(x)
    return float(fc.get_total_flops())


def median_seconds(fn, seconds: float, min_reps: int = 5) -> float:
    for _ in range(2):                                            # warm-up
        fn()
    times, t_end = [], time.perf_counter() + seconds
    while len(times) < min_reps or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build_model(args: argparse.Namespace, size: int, trunk: str = "resnet18"):
    if args.checkpoint:
        model, schema, _ = load_estimator(args.checkpoint)
        if model.config.input_size != size:
            model2 = AvatarEstimator(EstimatorConfig(**{**model.config.to_dict(),
                                                        "input_size": size}),
                                     model.n_continuous, model.num_options)
            model2.load_state_dict(model.state_dict())
            model = model2
        return model.eval(), schema
    schema = get_engine(args.engine).schema
    torch.manual_seed(0)
    return AvatarEstimator.for_schema(EstimatorConfig(input_size=size, backbone=trunk,
                                                      pretrained=None), schema).eval(), schema


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--sizes", default="64,224", help="input sizes (px)")
    ap.add_argument("--batches", default="1,64", help="batch sizes")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per row (s)")
    ap.add_argument("--trunks", default="resnet18,efficientnet_lite0",
                    help="estimator trunks to time (ignored with --checkpoint)")
    ap.add_argument("--engine", default="toon", help="engine whose schema sizes the heads")
    ap.add_argument("--checkpoint", default=None, help="a trained estimator (run dir or file)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    gflops = sgemm_gflops()
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32 CPU; sgemm "
          f"{gflops:.1f} GFLOP/s measured (1024^3 torch.mm)")
    head = (f"{'trunk':>18} {'input':>6} {'batch':>5} {'GFLOP/img':>9} {'floor ms':>9} {'net ms':>8} "
            f"{'predict ms':>10} {'opt ms':>8} {'images/s':>9} {'% floor':>8}")
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(0)
    verdict: dict[str, float] = {}
    trunks = ["checkpoint"] if args.checkpoint else args.trunks.split(",")
    for trunk, size in ((t, s) for t in trunks for s in sizes):
        model, schema = build_model(args, size, trunk)
        trunk = model.config.backbone
        fast = optimize_for_inference(model)
        fl = flops_per_image(model, size)
        for b in batches:
            x = torch.rand(b, 3, size, size) * 2 - 1
            images = rng.integers(0, 256, (b, DATA_SIZE, DATA_SIZE, 3), dtype=np.uint8)

            def net() -> None:
                with torch.inference_mode():
                    model(x)

            t_net = median_seconds(net, args.seconds)
            t_pred = median_seconds(lambda: predict_images(model, schema, images),
                                    args.seconds)
            t_opt = median_seconds(lambda: predict_images(fast, schema, images), args.seconds)
            floor = b * fl / (gflops * 1e9)
            print(f"{trunk:>18} {size:>6} {b:>5} {fl / 1e9:>9.3f} {1e3 * floor:>9.2f} {1e3 * t_net:>8.2f} "
                  f"{1e3 * t_pred:>10.2f} {1e3 * t_opt:>8.2f} {b / t_opt:>9.1f} "
                  f"{100 * floor / t_opt:>7.0f}%")
            if size == DATA_SIZE and b == 1:
                verdict[trunk] = 1.0 / t_opt
    for trunk, hz in verdict.items():
        print(f"{trunk}: batch 1 at {DATA_SIZE} px, end to end: {hz:.0f} Hz (goal >= "
              f"{GOAL_HZ:.0f} Hz: {'met' if hz >= GOAL_HZ else 'NOT met'})")


if __name__ == "__main__":
    main()
