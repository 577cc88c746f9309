"""Benchmark: GAN inversion (Eq. 4-5) per worker, its FLOPs floor, the pair pipeline on Ray.
Prints a table; not a test.

    python benchmarks/bench_inversion.py [--device cpu] [--steps 20] [--batches 1,32]
                                         [--count 64] [--pipeline-steps 200] [--generator CKPT]

Inversion rows (this process, one worker): the Adam loop of `swiftavatar.production.inversion.invert` on
G_avatar (default: a randomly initialised GeneratorConfig.embedded() generator, which costs the
same as a trained one) with LPIPS, at each --batches size. Each batch is timed for
max(1, steps // 4) and `steps` steps; the difference gives seconds per step with the fixed cost
(target features, final loss) cancelled, and fixed + 200 x step gives the time of one paper
inversion (section 4: 200 steps), hence inverted latents per minute per worker.

Floor rows: FLOPs of one inversion step per image (G forward + backward to the codes, LPIPS
forward + backward on the reconstruction; torch.utils.flop_counter, so matmuls and
convolutions only) and the time they need at this device's measured sgemm GFLOP/s
(a square torch.mm loop), next to the measured time.

Pipeline rows: `actors.produce_stage.run_produce_stage` (render -> invert -> G_real ->
augment -> Parquet) on a local Ray instance with 1 and 2 inversion workers, into temporary
directories, with generator checkpoints written by swiftavatar.training.checkpoint
(random weights of the benchmark generator's config unless --generator is given, which then
serves as both G_avatar and G_real). Wall time includes planning (w~_mean over --n-mean
samples) and actor start-up.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from swiftavatar.production.inversion import inversion_losses, invert, pool_to
from swiftavatar.production.inversion_config import InversionConfig
from swiftavatar.production.wplus import frozen
from swiftavatar.metrics import LpipsMetric, build_lpips
from swiftavatar.models import (Discriminator, DiscriminatorConfig, GeneratorConfig,
                                SemanticGenerator)
from swiftavatar.training.checkpoint import load_generator, make_payload, save_checkpoint

PAPER_STEPS = InversionConfig.steps  # section 4


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def sgemm_gflops(dev: torch.device, n: int = 1024, seconds: float = 1.0) -> float:
    """Measured float32 matmul rate: (n, n) @ (n, n) repeated for about `seconds`."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dev)
    b = torch.randn(n, n, generator=g).to(dev)
    out = torch.empty(n, n, device=dev)
    for _ in range(3):                                                  # warm-up
        torch.mm(a, b, out=out)
    sync(dev)
    reps, t0 = 0, time.perf_counter()
    while True:
        for _ in range(8):
            torch.mm(a, b, out=out)
        reps += 8
        sync(dev)
        if time.perf_counter() - t0 >= seconds:
            break
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def load_or_build_generator(args: argparse.Namespace) -> tuple[SemanticGenerator, str]:
    if args.generator:
        g, meta = load_generator(args.generator, device=args.device)
        return g, f"{meta['path']} (step {meta.get('step')})"
    torch.manual_seed(0)
    return (SemanticGenerator(GeneratorConfig.embedded()).eval().to(args.device),
            "random GeneratorConfig.embedded()")


def step_flops(G: SemanticGenerator, lp: LpipsMetric, targets: torch.Tensor,
               w_mean: torch.Tensor, cfg: InversionConfig) -> tuple[float, float]:
    """(G, LPIPS) FLOPs of one inversion step per image: forward + backward to the codes."""
    n = targets.shape[0]
    with frozen(G):
        anchor = w_mean[:, None].expand(n, G.n_latent, -1)                  # (n, R, D)
        with torch.no_grad():
            feats = lp.features(pool_to(targets, cfg.lpips_size), check_range=False)
        w = anchor.clone().requires_grad_(True)
        with FlopCounterMode(display=False) as only_g:
            image, _ = G(w, input_is_latent=True, noise=cfg.noise)         # (n, 3, S, S)
            image.sum().backward()
        w = anchor.clone().requires_grad_(True)
        with FlopCounterMode(display=False) as whole:
            losses, _, _ = inversion_losses(G, w, targets, anchor, lp, cfg, feats)
            losses["total"].sum().backward()
    g = only_g.get_total_flops() / n
    return g, whole.get_total_flops() / n - g


def inversion_rows(args: argparse.Namespace, G: SemanticGenerator, lp: LpipsMetric,
                   gflops: float) -> list[tuple[str, str]]:
    dev = torch.device(args.device)
    cfg = InversionConfig()
    B_max = max(args.batches)
    with torch.no_grad():
        w_mean = G.mean_latent(args.n_mean, device=dev,
                               generator=torch.Generator(dev).manual_seed(0))  # (1, D)
        z = torch.randn(B_max, G.config.style_dim, generator=torch.Generator().manual_seed(1))
        targets = G(z.to(dev))[0].clamp(-1, 1)                               # (B, 3, S, S)
    assert targets.shape == (B_max, 3, G.config.size, G.config.size), targets.shape

    g_fl, l_fl = step_flops(G, lp, targets[:min(4, B_max)], w_mean, cfg)
    fl = g_fl + l_fl
    rows = [("FLOPs per image-step, G fwd+bwd (GFLOP)", f"{g_fl / 1e9:.3f}"),
            ("FLOPs per image-step, LPIPS fwd+bwd (GFLOP)", f"{l_fl / 1e9:.3f}"),
            ("FLOPs per image-step, total (GFLOP)", f"{fl / 1e9:.3f}"),
            ("sgemm rate, measured (GFLOP/s)", f"{gflops:.1f}"),
            ("floor per image-step at sgemm rate (ms)", f"{1e3 * fl / (gflops * 1e9):.2f}")]

    def timed(B: int, steps: int) -> float:
        sync(dev)
        t0 = time.perf_counter()
        invert(G, targets[:B], cfg, w_init=w_mean, lpips=lp, steps=steps)
        sync(dev)
        return time.perf_counter() - t0

    short, long = max(1, args.steps // 4), args.steps
    rate = {}
    for B in args.batches:
        timed(B, 1)                                                         # warm-up
        t_short, t_long = timed(B, short), timed(B, long)
        per_step = max(t_long - t_short, 1e-9) / (long - short)
        fixed = max(0.0, t_short - short * per_step)
        per_inversion = fixed + PAPER_STEPS * per_step                     # B images at once
        rate[B] = 60.0 * B / per_inversion
        floor_ms = 1e3 * B * fl / (gflops * 1e9)
        rows += [(f"batch {B}: s per step", f"{per_step:.4f}"),
                 (f"batch {B}: ms per image-step (floor {floor_ms / B:.2f})",
                  f"{1e3 * per_step / B:.2f}"),
                 (f"batch {B}: measured / floor per step (x)", f"{1e3 * per_step / floor_ms:.1f}"),
                 (f"batch {B}: achieved GFLOP/s", f"{B * fl / per_step / 1e9:.1f}"),
                 (f"batch {B}: fixed cost per call (s)", f"{fixed:.3f}"),
                 (f"batch {B}: s per image, {PAPER_STEPS} steps", f"{per_inversion / B:.3f}"),
                 (f"batch {B}: inverted latents/min/worker", f"{rate[B]:.2f}")]
    lo, hi = min(args.batches), max(args.batches)
    if hi != lo:
        rows.append((f"  ratio latents/min batch {hi} / batch {lo}", f"{rate[hi] / rate[lo]:.2f}"))
    return rows


def write_random_checkpoint(directory: Path, gcfg: GeneratorConfig, seed: int,
                            domain: str) -> str:
    """A checkpoint of a randomly initialised generator of config `gcfg`, written with the
    training code's writer (as tests/test_produce.py's fixture does) -> its directory."""
    torch.manual_seed(seed)
    g, g_ema = SemanticGenerator(gcfg), SemanticGenerator(gcfg)
    g_ema.load_state_dict(g.state_dict())
    d = Discriminator(DiscriminatorConfig(size=gcfg.size, channels=(16,) * (
        gcfg.size.bit_length() - 2)))                                       # unused here
    payload = make_payload(
        g=g, d=d, g_ema=g_ema, g_opt=torch.optim.Adam(g.parameters()),
        d_opt=torch.optim.Adam(d.parameters()), step=0, images_seen=0, mean_path_length=0.0,
        run_config={"domain": domain},
        w_mean=g_ema.mean_latent(1000, generator=torch.Generator().manual_seed(0)))
    return str(save_checkpoint(directory, payload).parent)


def pipeline_rows(args: argparse.Namespace, G: SemanticGenerator,
                  tmp: str) -> list[tuple[str, str]]:
    import ray

    from actors.produce_stage import run_produce_stage
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig, produce_inversion

    if args.generator:
        g_avatar = g_real = args.generator
    else:
        g_avatar = write_random_checkpoint(Path(tmp, "g_avatar"), G.config, 0, "avatar")
        g_real = write_random_checkpoint(Path(tmp, "g_real"), G.config, 1, "real")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local run: no token in the home dir
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    ray.init(address="local", num_cpus=args.ray_cpus, num_gpus=gpus, include_dashboard=False,
             object_store_memory=256 * 2 ** 20, _temp_dir=tempfile.mkdtemp(prefix="ray-",
                                                                              dir=tmp),
             log_to_driver=False)
    shard = args.shard_size or max(1, -(-args.count // 4))
    rows, rate = [], {}
    for workers in (1, 2):
        cfg = ProduceConfig(
            engine=args.engine, out=os.path.join(tmp, f"pairs-{workers}"), g_avatar=g_avatar,
            g_real=g_real, count=args.count, size=args.size, shard_size=shard,
            inversion=produce_inversion(steps=args.pipeline_steps, n_mean=args.n_mean),
            augment=AugmentConfig(num_augmentations=args.augmentations),
            lpips_backbone=args.lpips_backbone, lpips_allow_random=args.lpips_backbone == "random",
            workers=workers, gpus_per_worker=0.5 if gpus else 0.0,
            batch_size=args.pipeline_batch, progress=False)
        t0 = time.perf_counter()
        card = run_produce_stage(cfg)
        wall = time.perf_counter() - t0
        n_rows = card["counts"]["pairs_written"] + card["counts"]["dropped_rows"]
        if not card["complete"] or n_rows != args.count * (1 + args.augmentations) - (
                card["counts"]["engine_errors"] * (1 + args.augmentations)):
            raise RuntimeError(f"pipeline with {workers} worker(s) wrote {n_rows} rows: "
                               f"{card['counts']}")
        rate[workers] = n_rows / wall
        rows += [(f"pipeline, {workers} worker(s): rows/s", f"{rate[workers]:.3f}"),
                 (f"pipeline, {workers} worker(s): wall s for {n_rows} rows", f"{wall:.1f}")]
    rows.append(("  ratio rows/s 2 workers / 1 worker", f"{rate[2] / rate[1]:.2f}"))
    return rows


def parse_batches(text: str) -> list[int]:
    try:
        out = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected batch sizes like 1,32, got {text!r}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="device of G, LPIPS and the inversion workers (default cpu)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads in this process (default 1, as a Ray actor; 0: "
                         "torch's default)")
    ap.add_argument("--steps", type=int, default=20,
                    help="longer timed run in Adam steps; the shorter is steps // 4 (default 20)")
    ap.add_argument("--batches", type=parse_batches, default=[1, 32],
                    help="comma-separated batch sizes for the inversion rows (default 1,32)")
    ap.add_argument("--n-mean", type=int, default=10_000,
                    help="samples for w_mean / w~_mean (default 10000, the paper's)")
    ap.add_argument("--generator", default=None, metavar="CKPT",
                    help="a trained G_avatar checkpoint (file, dir or run dir); default a random "
                         "GeneratorConfig.embedded() generator (same cost)")
    ap.add_argument("--lpips-backbone", choices=("hed", "random", "torchvision"), default=None,
                    help="LPIPS trunk (default: what build_lpips finds offline)")
    ap.add_argument("--count", type=int, default=64,
                    help="samples per pipeline run; 0 skips the pipeline rows (default 64)")
    ap.add_argument("--size", type=int, default=None,
                    help="pipeline render size in px (default: G_avatar's output size)")
    ap.add_argument("--shard-size", type=int, default=None,
                    help="samples per pipeline shard (default: count / 4, rounded up)")
    ap.add_argument("--pipeline-steps", type=int, default=PAPER_STEPS,
                    help=f"inversion steps in the pipeline (default {PAPER_STEPS}, the paper's)")
    ap.add_argument("--pipeline-batch", type=int, default=8,
                    help="images inverted together per pipeline worker (default 8)")
    ap.add_argument("--augmentations", type=int, default=10,
                    help="augmentations per sample in the pipeline (default 10, the paper's)")
    ap.add_argument("--engine", default="toon", help="avatar engine of the pipeline (default toon)")
    ap.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be >= 2 (two run lengths are timed)")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available here")
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = tempfile.mkdtemp(prefix="bench-inv-")
    try:
        G, source = load_or_build_generator(args)
        lp = build_lpips("vgg", args.lpips_backbone,
                         allow_random=args.lpips_backbone == "random", device=args.device)
        dev = torch.device(args.device)
        where = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                 else f"CPU, torch threads {torch.get_num_threads()}")
        gflops = sgemm_gflops(dev)
        rows = inversion_rows(args, G, lp, gflops)
        if args.count:
            rows += pipeline_rows(args, G, tmp)
        print(f"\ninversion on {where}; G_avatar {source}, {G.config.size} px, "
              f"{sum(p.numel() for p in G.parameters()) / 1e6:.2f} M params; LPIPS vgg "
              f"backbone {lp.info['backbone']}; torch {torch.__version__}")
        print(f"pipeline: engine {args.engine}, {args.count} samples x (1 + "
              f"{args.augmentations}) rows, {args.pipeline_steps} steps, batch "
              f"{args.pipeline_batch}, Ray {args.ray_cpus} CPUs")
        width = max(len(name) for name, _ in rows)
        print(f"| {'what':<{width}} | value |\n|{'-' * (width + 2)}|------:|")
        for name, value in rows:
            print(f"| {name:<{width}} | {value} |")
    finally:
        try:
            import ray
            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
