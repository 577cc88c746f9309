"""Train the embedded generators in one process on one device, without Ray, and export releases.

This is how the shipped generators in swiftavatar/pretrained/ were made (see its README.md). It
renders the training images with a process pool first (procedural faces for G_real; avatars of
--avatar-engine drawn from the engine's suggested prior, with their masks where the engine
draws them), then pretrains G_real and finetunes G_avatar from it with
`swiftavatar.training.local.train_in_process` (the Ray Train workers' code), each under a step
cap and a time limit, and writes float16 releases:

    python scripts/train_generators_gpu.py --out runs/gens --device cuda \
        --real-seconds 300 --avatar-seconds 150

A G_avatar from the shipped G_real with the shape path frozen (how the shipped ones were made,
on a 2-core CPU):

    python scripts/train_generators_gpu.py --out runs/gens/toon --device cpu \
        --real-init pretrained:g_real_64 --avatar-engine toon --toon-count 4000 \
        --avatar-steps 500 --avatar-batch 8 --freeze shape --ema-rampup 0.05

Renders made beforehand (an .npz with `images` (N, S, S, 3) uint8 and optionally `masks`
(N, S, S) uint8), e.g. for engines whose renderer is not installed on the GPU box:

    python scripts/train_generators_gpu.py --out runs/gens --device cuda \
        --real-init pretrained:g_real_64 --avatar-images avataaars_64.npz \
        --avatar-engine avataaars --avatar-seconds 150

Run directories: OUT/g_real and OUT/g_avatar_<engine> (checkpoints, samples, config.json);
releases OUT/g_real.pt and OUT/g_avatar_<engine>.pt; OUT/history.json holds the metrics.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _faces(args: tuple[int, list[int], int]):
    from swiftavatar.faces import face_images

    seed, ids, size = args
    return face_images(seed, ids, size)                  # (n, S, S, 3), (n, S, S)


def _avatars(args: tuple[str, int, list[int], int]):
    from swiftavatar.engines import get_engine

    engine, seed, ids, size = args
    with get_engine(engine) as eng:
        batch = eng.schema.sample(seed, ids, eng.suggested_prior())
        r = eng.render(batch, size)
        return r.images, r.masks                          # (n, S, S, 3), (n, S, S)


def _chunks(count: int, n: int) -> list[list[int]]:
    return [list(range(i, min(count, i + n))) for i in range(0, count, n)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="directory for both runs and the releases")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda or cpu")
    p.add_argument("--size", type=int, default=64, choices=(64, 128), help="image size")
    p.add_argument("--real-count", type=int, default=24_000, help="procedural faces")
    p.add_argument("--toon-count", type=int, default=10_000, help="avatar renders drawn from --avatar-engine (without --avatar-images)")
    p.add_argument("--real-steps", type=int, default=20_000, help="G_real step cap")
    p.add_argument("--avatar-steps", type=int, default=2_000, help="G_avatar step cap")
    p.add_argument("--real-seconds", type=float, default=None, help="G_real time limit")
    p.add_argument("--avatar-seconds", type=float, default=None, help="G_avatar time limit")
    p.add_argument("--real-batch", type=int, default=32, help="G_real batch")
    p.add_argument("--avatar-batch", type=int, default=16, help="G_avatar batch (paper: 16)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps per checkpoint")
    p.add_argument("--processes", type=int, default=max(1, (os.cpu_count() or 2) - 2),
                   help="rendering processes")
    p.add_argument("--real-init", default=None, help="skip G_real training and finetune "
                   "from this checkpoint (e.g. pretrained:g_real_64)")
    p.add_argument("--avatar-images", default=None, help=".npz with `images` (N, S, S, 3) "
                   "uint8 renders to finetune on, instead of rendering toon here")
    p.add_argument("--avatar-engine", default="toon", help="engine of the avatar renders "
                   "(names the release g_avatar_<engine>.pt)")
    p.add_argument("--freeze", choices=("shape", "none"), default=None,
                   help="G_avatar parameters held at G_real's values (default: the config's, "
                        "shape: mapping, layouts and depth heads)")
    p.add_argument("--mask-discriminator", choices=("auto", "yes", "no"), default="auto",
                   help="G_avatar's discriminator also sees masks (auto: when the renders "
                        "come with masks)")
    p.add_argument("--ema-rampup", type=float, default=None,
                   help="G_avatar's EMA half-life is at most this share of the images seen "
                        "(StyleGAN2-ADA's ramp; use 0.05 for short CPU finetunes, where the "
                        "default 10k-image half-life leaves G_ema close to G_real)")
    p.add_argument("--lambda-color", type=float, default=None,
                   help="G_avatar's colour matching weight, Eq. 3 (default: the config's, 5)")
    p.add_argument("--avatar-threads", type=int, default=0,
                   help="torch threads (0: torch's default)")
    p.add_argument("--copy-to", default=None, help="also copy releases, samples and history "
                   "here as each is written")
    a = p.parse_args(argv)

    t0 = time.monotonic()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # Render before torch touches the GPU (forked workers and CUDA do not mix).
    faces = None
    toon_masks = None
    with mp.get_context("fork").Pool(a.processes) as pool:
        if a.real_init is None:
            parts = pool.map(_faces, [(0, ids, a.size) for ids in _chunks(a.real_count, 250)])
            faces = np.concatenate([x[0] for x in parts]), np.concatenate([x[1] for x in parts])
        if a.avatar_images is None:
            parts = pool.map(_avatars, [(a.avatar_engine, 0, ids, a.size)
                                        for ids in _chunks(a.toon_count, 250)])
            toons = np.concatenate([x[0] for x in parts])
            toon_masks = (None if parts[0][1] is None       # engines without masks
                          else np.concatenate([x[1] for x in parts]))
            avatar_label = (f"{a.avatar_engine} engine, suggested prior, seed 0, "
                            f"{a.toon_count} renders at "
                            f"{a.size} px")
    if a.avatar_images is not None:
        with np.load(a.avatar_images) as f:
            toons = f["images"]                           # (N, S, S, 3) uint8
            toon_masks = f["masks"] if "masks" in f.files else None   # (N, S, S) uint8
        avatar_label = (f"{a.avatar_engine} engine, {len(toons)} renders at {a.size} px from "
                        f"{Path(a.avatar_images).name}")
    print(f"[gens] {0 if faces is None else len(faces[0])} faces and {len(toons)} avatar "
          f"images at {a.size} px ready in {time.monotonic() - t0:.1f} s", flush=True)

    import torch

    from swiftavatar import atomic
    from swiftavatar.training.checkpoint import (SAMPLE_FILE, find_checkpoint, read_checkpoint,
                                                 release_payload)
    from swiftavatar.training.gan_config import GanTrainConfig, embedded_generator
    from swiftavatar.training.local import train_in_process

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device(a.device)
    gpu = dev.type == "cuda"
    common = dict(generator=embedded_generator(a.size), checkpoint_every=a.checkpoint_every,
                  sample_every=a.checkpoint_every, log_every=100, keep_checkpoints=2,
                  progress=False, device="cuda" if gpu else "cpu", use_gpu=gpu)
    history: dict[str, list] = {}

    def finish(name: str, trainer, cfg: GanTrainConfig) -> Path:
        """Write OUT/NAME.pt (float16 release), its sample grid and the history."""
        ckpt = find_checkpoint(cfg.out)
        release = out / f"{name}.pt"
        # G_avatars ship without D (nothing finetunes from them); G_real keeps it
        atomic.torch_save(release, release_payload(read_checkpoint(ckpt),
                                                   keep_discriminator=name == "g_real"))
        if name != "g_real":  # a G_avatar ships with w~_mean for the paper's and the main
            # job's draws (toon's also for --quick's) (produce reads it instead of spending minutes on the draws)
            from actors.main_job import QUICK_N_MEAN, ProduceRun
            from swiftavatar.production.inversion_config import InversionConfig
            from swiftavatar.production.mean_cache import store_w_tilde

            draws = [(InversionConfig.n_mean, 0), (ProduceRun.n_mean, 0)]
            store_w_tilde(release, draws + [(QUICK_N_MEAN, 0)] * (name == "g_avatar_toon"))
        shutil.copyfile(ckpt.parent / SAMPLE_FILE, out / f"{name}_samples.png")
        (out / "history.json").write_text(json.dumps(history, indent=1))
        if a.copy_to:
            for f in (release, out / f"{name}_samples.png", out / "history.json"):
                shutil.copyfile(f, Path(a.copy_to) / f.name)
        print(f"[gens] {name}: step {trainer.step}, {trainer.images_seen} images, release "
              f"{release} ({release.stat().st_size / 1e6:.1f} MB), "
              f"t={time.monotonic() - t0:.0f} s", flush=True)
        return release

    if a.real_init is None:
        real = GanTrainConfig(domain="real", out=str(out / "g_real"), steps=a.real_steps,
                              batch=a.real_batch, real_count=a.real_count, **common)
        tr, history["g_real"] = train_in_process(real, faces[0], faces[1], dev,
                                                 time_limit_s=a.real_seconds)
        finish("g_real", tr, real)
        del tr
        init = str(out / "g_real")
    else:
        init = str(find_checkpoint(a.real_init))
    if a.avatar_threads:
        torch.set_num_threads(a.avatar_threads)
    mask_d = {"auto": toon_masks is not None, "yes": True, "no": False}[a.mask_discriminator]
    if mask_d and toon_masks is None:
        raise SystemExit("--mask-discriminator yes needs renders with masks (an .npz without "
                         "`masks` was given)")
    avatar = GanTrainConfig(domain="avatar", out=str(out / f"g_avatar_{a.avatar_engine}"),
                            steps=a.avatar_steps, batch=a.avatar_batch, init=init,
                            data=avatar_label, freeze=a.freeze, mask_discriminator=mask_d,
                            ema_rampup=a.ema_rampup,
                            **({} if a.lambda_color is None else {"lambda_color": a.lambda_color}),
                            **common)
    tr, history[f"g_avatar_{a.avatar_engine}"] = train_in_process(
        avatar, toons, toon_masks if mask_d else None, dev, time_limit_s=a.avatar_seconds)
    finish(f"g_avatar_{a.avatar_engine}", tr, avatar)
    print(f"[gens] done in {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
