"""Benchmark: SemanticStyleGAN generator and one G+D step on the CPU. Prints a table; not a test.

    python benchmarks/bench_gan_step.py [--batch 16] [--repeats 9] [--threads N]
                                        [--train-sizes 64 128] [--cycles 2] [--no-parts]

Part rows (embedded configs, 64 px): G forward without grad, G forward+backward, and one G+D
training step (D update on real + fake, then G update through D; no lazy regularisers), with
the two-branch discriminator and with the image-only one. Times are min and median seconds.

Training rows: full iterations of `GanTrainer.train_step` (the code the Ray Train workers run:
D step, lazy R1, G step with the mask loss, lazy path length, EMA) on procedural faces, in one
process, for the embedded configs at each --train-sizes. "lazy regs" runs R1 every 16 and path
length every 4 steps, timed over whole 16-step cycles; "no regs" sets both weights to 0. The
avatar row adds the frozen G_real forward and the colour loss, with the image-only D.
"""
from __future__ import annotations

import argparse
import time

import torch

from swiftavatar.models import (
    Discriminator, DiscriminatorConfig, GeneratorConfig, SemanticGenerator, d_logistic_loss,
    g_nonsaturating_loss)


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()                                                   # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0], times[len(times) // 2]


def training_rows(size: int, batch: int, cycles: int,
                  device: str = "cpu") -> list[tuple[str, float, float]]:
    """(name, iterations/s, seconds per iteration) of GanTrainer.train_step at `size` px."""
    import dataclasses

    from swiftavatar.faces import face_images
    from swiftavatar.training.gan_config import GanTrainConfig, embedded_generator
    from swiftavatar.training.gan_loop import GanTrainer

    images, masks = face_images(0, range(batch), size)          # (B, S, S, 3), (B, S, S)
    real = {"image": torch.from_numpy(images), "mask": torch.from_numpy(masks)}
    base = GanTrainConfig(out="(benchmark: nothing is written)",
                          generator=embedded_generator(size), batch=batch, w_mean_samples=256,
                          progress=False, device=device, use_gpu=device == "cuda")
    no_regs = dict(r1_gamma=0.0, r1_gamma_seg=0.0, path_weight=0.0)
    rows = []
    for name, cfg in ((f"real, {size} px, lazy regs", base),
                      (f"real, {size} px, no regs", dataclasses.replace(base, **no_regs))):
        rows.append((name, *_time_iterations(GanTrainer(cfg, device), real, cycles * 16)))
    g_real = GanTrainer(base, device).payload()
    avatar = dataclasses.replace(base, domain="avatar", init="(in memory)", data="(in memory)",
                                 discriminator=None)
    trainer = GanTrainer(avatar, device, init=g_real)
    rows.append((f"avatar, {size} px, lazy regs, L_color",
                 *_time_iterations(trainer, {"image": real["image"]}, cycles * 16)))
    return rows


def _time_iterations(trainer, batch, n: int) -> tuple[float, float]:
    for _ in range(2):                                           # warm-up (R1 + path at 0)
        trainer.train_step(batch)
    while trainer.step % 16:                                     # start a 16-step cycle
        trainer.train_step(batch)
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        trainer.train_step(batch)
    sync()
    sec = (time.perf_counter() - t0) / n
    return 1.0 / sec, sec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--train-sizes", type=int, nargs="*", default=[64, 128],
                    help="sizes for the training-iteration rows (none: skip them)")
    ap.add_argument("--cycles", type=int, default=2,
                    help="16-step cycles timed per training row (default 2)")
    ap.add_argument("--no-parts", action="store_true", help="skip the part rows")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="device of the training rows (default cpu)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.no_parts:
        part_rows(args)
    if args.train_sizes:
        where = (torch.cuda.get_device_name() if args.device == "cuda"
                 else f"CPU, torch threads {torch.get_num_threads()}")
        print(f"\ntraining iterations, batch {args.batch}, {where}")
        print("| what | it/s | s/it |\n|---|---|---|")
        for size in args.train_sizes:
            for name, its, sec in training_rows(size, args.batch, args.cycles, args.device):
                print(f"| {name} | {its:.3f} | {sec:.3f} |", flush=True)


def part_rows(args: argparse.Namespace) -> None:
    gcfg = GeneratorConfig.embedded()
    g = SemanticGenerator(gcfg)
    n, dim = args.batch, gcfg.style_dim
    real = torch.randn(n, 3, gcfg.size, gcfg.size)
    real_seg = torch.randn(n, gcfg.num_classes, gcfg.size, gcfg.size)

    def g_forward() -> None:
        with torch.no_grad():
            g(torch.randn(n, dim))

    def g_forward_backward() -> None:
        img, seg = g(torch.randn(n, dim))
        (img.square().mean() + seg.square().mean()).backward()

    rows = [("G forward (no grad)", g_forward), ("G forward+backward", g_forward_backward)]
    for seg in (True, False):
        d = Discriminator(DiscriminatorConfig.embedded(seg=seg))
        g_opt = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.99))
        d_opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))

        def step(d=d, g_opt=g_opt, d_opt=d_opt, seg=seg) -> None:
            extra = (lambda s: (s,)) if seg else (lambda s: ())
            with torch.no_grad():
                fake, fake_seg = g(torch.randn(n, dim))
            d_loss = d_logistic_loss(d(real, *extra(real_seg)), d(fake, *extra(fake_seg)))
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            fake, fake_seg = g(torch.randn(n, dim))
            g_loss = g_nonsaturating_loss(d(fake, *extra(fake_seg)))
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()

        rows.append((f"G+D step (D {'image+seg' if seg else 'image only'})", step))

    print(f"batch {n}, {gcfg.size} px, torch threads {torch.get_num_threads()}, "
          f"G {sum(p.numel() for p in g.parameters()) / 1e6:.2f} M params")
    print("| what | min s | median s |\n|---|---|---|")
    for name, fn in rows:
        lo, med = timed(fn, args.repeats)
        print(f"| {name} | {lo:.3f} | {med:.3f} |")


if __name__ == "__main__":
    main()
