"""Benchmark: avatar-estimator inference (section 3.3) on the CPU beside its FLOPs floor, in
torch and in ONNX Runtime. Prints a table; not a test.

    python benchmarks/bench_estimator.py [--threads 2] [--ort-threads 1,2] [--ort-options]
                                         [--sizes 64,224] [--batches 1,64]
                                         [--trunks resnet18,efficientnet_lite0]
                                         [--seconds 3] [--engine toon] [--checkpoint RUN]

For each input size and batch, torch rows (at each --threads): `net` is the model's forward
alone on (B, 3, S, S) float input (eval, inference mode); `predict` is `predict_images` end to
end, from (B, 64, 64, 3) uint8 images (the embedded data resolution; resized to S) to a
decoded, valid VectorBatch; `opt` is the same with `optimize_for_inference(model)` (BatchNorm
folded, channels_last), and images/s, "% floor" and the verdict use it. ONNX rows (at each
--ort-threads): the same model exported (`estimator.onnx_export`, BatchNorm folded) in an
ONNX Runtime session (`OnnxEstimator`: sequential, all graph optimisations, no spinning);
`net` is the session alone, `opt` is `predict_images` end to end with it (`predict` does not
apply). --ort-options adds a table of session options at batch 1 and 64 px. Times are medians
over repeats filling about --seconds. The floor is FLOPs per image x B at this CPU's measured
float32 matmul rate (a square torch.mm loop at the row's thread count); FLOPs are counted with
torch.utils.flop_counter (matmuls and convolutions). Goals at batch 1 at the embedded
resolution (64 px): torch >= 100 Hz, ONNX Runtime >= 250 Hz. With --checkpoint the trained
model is timed (same cost as a random one of the same config).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator.checkpoint import load_estimator
from swiftavatar.estimator.model import AvatarEstimator, EstimatorConfig, optimize_for_inference
from swiftavatar.estimator.onnx_export import OPSET, export_onnx
from swiftavatar.estimator.predict import predict_images

GOAL_HZ = 100.0            # torch
ORT_GOAL_HZ = 250.0        # ONNX Runtime
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


def ort_session(path, threads: int, spinning: bool = False, sequential: bool = True,
                optimization: str = "all"):
    from swiftavatar.estimator.onnx_runtime import OnnxEstimator

    return OnnxEstimator(path, threads, spinning=spinning, sequential=sequential,
                         optimization=optimization)


def ort_options_table(path, size: int, seconds: float, threads: list[int]) -> None:
    """Batch 1, the session alone: every graph optimisation level, spinning on/off and
    sequential/parallel execution at each thread count."""
    x = torch.rand(1, 3, size, size) * 2 - 1
    print(f"\nONNX Runtime session options, batch 1 at {size} px, session.run alone (ms):")
    print(f"{'threads':>7} {'optimization':>12} {'spinning':>8} {'execution':>10} {'ms':>7} "
          f"{'Hz':>6}")
    for t in threads:
        for opt in ("disable", "basic", "extended", "all"):
            for spin in (False, True):
                for seq in (True, False):
                    m = ort_session(path, t, spin, seq, opt)
                    ms = 1e3 * median_seconds(lambda: m(x), seconds)
                    print(f"{t:>7} {opt:>12} {'on' if spin else 'off':>8} "
                          f"{'sequential' if seq else 'parallel':>10} {ms:>7.2f} "
                          f"{1e3 / ms:>6.0f}")
                    del m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="2", help="torch intra-op threads (comma list)")
    ap.add_argument("--ort-threads", default="1,2",
                    help="ONNX Runtime intra-op threads (comma list; empty: no ONNX rows)")
    ap.add_argument("--ort-options", action="store_true",
                    help="also time ONNX Runtime's session options at batch 1 (a second table)")
    ap.add_argument("--sizes", default="64,224", help="input sizes (px)")
    ap.add_argument("--batches", default="1,64", help="batch sizes")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per row (s)")
    ap.add_argument("--trunks", default="resnet18,efficientnet_lite0",
                    help="estimator trunks to time (ignored with --checkpoint)")
    ap.add_argument("--engine", default="toon", help="engine whose schema sizes the heads")
    ap.add_argument("--checkpoint", default=None, help="a trained estimator (run dir or file)")
    args = ap.parse_args()
    ints = lambda text: [int(v) for v in text.split(",") if v.strip()]  # noqa: E731
    torch_threads, ort_threads = ints(args.threads), ints(args.ort_threads)
    sizes, batches = ints(args.sizes), ints(args.batches)
    gflops = {}
    for t in sorted(set(torch_threads + ort_threads)):
        torch.set_num_threads(t)
        gflops[t] = sgemm_gflops()
    rates = ", ".join(f"{gflops[t]:.1f} GFLOP/s at {t} thread(s)" for t in gflops)
    print(f"torch {torch.__version__}, float32 CPU; sgemm {rates} (1024^3 torch.mm; the "
          f"floor of each row uses its thread count)")
    if ort_threads:
        import onnxruntime

        print(f"onnxruntime {onnxruntime.__version__} (CPU provider, sequential, all graph "
              f"optimisations, no spinning; export opset {OPSET})")
    head = (f"{'runtime':>7} {'thr':>3} {'trunk':>18} {'input':>5} {'batch':>5} {'GFLOP/img':>9} "
            f"{'floor ms':>8} {'net ms':>8} {'predict ms':>10} {'opt ms':>8} {'images/s':>9} "
            f"{'% floor':>7}")
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(0)
    verdict: dict[tuple[str, str], float] = {}
    trunks = ["checkpoint"] if args.checkpoint else args.trunks.split(",")
    for trunk, size in ((t, s) for t in trunks for s in sizes):
        model, schema = build_model(args, size, trunk)
        trunk = model.config.backbone
        fast = optimize_for_inference(model)
        fl = flops_per_image(model, size)
        with tempfile.TemporaryDirectory() as tmp:
            onnx_file = export_onnx(model, schema, Path(tmp) / "est.onnx") if ort_threads else None
            for b in batches:
                x = torch.rand(b, 3, size, size) * 2 - 1
                images = rng.integers(0, 256, (b, DATA_SIZE, DATA_SIZE, 3), dtype=np.uint8)

                def row(runtime: str, t: int, t_net: float, t_pred: float | None,
                        t_opt: float) -> None:
                    floor = b * fl / (gflops[t] * 1e9)
                    pred = f"{1e3 * t_pred:>10.2f}" if t_pred is not None else f"{'-':>10}"
                    print(f"{runtime:>7} {t:>3} {trunk:>18} {size:>5} {b:>5} {fl / 1e9:>9.3f} "
                          f"{1e3 * floor:>8.2f} {1e3 * t_net:>8.2f} {pred} {1e3 * t_opt:>8.2f} "
                          f"{b / t_opt:>9.1f} {100 * floor / t_opt:>6.0f}%")
                    if size == DATA_SIZE and b == 1:
                        key = (trunk, f"{runtime} {t} thread(s)")
                        verdict[key] = max(verdict.get(key, 0.0), 1.0 / t_opt)

                for t in torch_threads:
                    torch.set_num_threads(t)

                    def net() -> None:
                        with torch.inference_mode():
                            model(x)

                    t_net = median_seconds(net, args.seconds)
                    t_pred = median_seconds(lambda: predict_images(model, schema, images),
                                            args.seconds)
                    t_opt = median_seconds(lambda: predict_images(fast, schema, images),
                                           args.seconds)
                    row("torch", t, t_net, t_pred, t_opt)
                for t in ort_threads:
                    torch.set_num_threads(t)          # prepare_images and decode, as in torch
                    ort_model = ort_session(onnx_file, t)
                    t_net = median_seconds(lambda: ort_model(x), args.seconds)
                    t_opt = median_seconds(lambda: predict_images(ort_model, schema, images),
                                           args.seconds)
                    row("onnx", t, t_net, None, t_opt)
                    del ort_model
            if args.ort_options and onnx_file is not None and size == DATA_SIZE:
                ort_options_table(onnx_file, size, min(args.seconds, 1.0), ort_threads)
    for (trunk, runtime), hz in verdict.items():
        goal = ORT_GOAL_HZ if runtime.startswith("onnx") else GOAL_HZ
        print(f"{trunk}, {runtime}: batch 1 at {DATA_SIZE} px, end to end: {hz:.0f} Hz (goal "
              f">= {goal:.0f} Hz: {'met' if hz >= goal else 'NOT met'})")


if __name__ == "__main__":
    main()
