"""Benchmark: SemanticStyleGAN generator and one G+D step on the CPU. Prints a table; not a test.

    python benchmarks/bench_gan_step.py [--batch 16] [--repeats 9] [--threads N]

Rows (embedded configs, 64 px): G forward without grad, G forward+backward, and one G+D
training step (D update on real + fake, then G update through D; no lazy regularisers), with
the two-branch discriminator and with the image-only one. Times are min and median seconds.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
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
