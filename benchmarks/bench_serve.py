"""Benchmark: the HTTP service (`swiftavatar serve`) under concurrent clients, and in process.
Prints a table; not a test.

    python benchmarks/bench_serve.py [--levels 1,8,32] [--requests 300] [--seconds 20]
                                     [--threads 1] [--max-batch-size 16] [--batch-wait-ms 10]
                                     [--align none] [--client keepalive] [--json FILE]

One run, three configurations on the same pre-cropped face images (the shipped check photos,
framed once by mediapipe when it is installed, else centre-cropped; sent as JPEG):
  in-process: the library's AvatarPredictor (decode, frame, estimate, render at the service's
      render size), one image at a time, then --max-batch-size images per call (latency per
      call, throughput in images/s): the limit the service is measured against;
  batched: the service on a local Ray instance on 127.0.0.1 with dynamic batching
      (--max-batch-size, --batch-wait-ms);
  batch 1: the same application redeployed with max batch size 1.
For each service configuration and each level of concurrent clients (threads, each with its
own connection), the level is warmed up first (--warmup requests per client), then the
clients send POST /v1/avatars until --requests are answered or --seconds have passed.
Requests/s counts answered requests over the level's wall time; latencies are per request.
`mean batch` is the estimator's mean forward-pass batch over the level. Requests ask for no
crop PNG (crop=0; --crop-png asks for it), as the in-process rows make none. A second table
gives the median ms per stage of each row: in the ingress (Ingress.stage_times: reading the
body, decoding and framing, each call to another deployment, encoding the answer; "outside"
is the client's p50 less the ingress's: HTTP, the proxy and its hop), in process (decode,
frame and estimate, render). Torch threads are set to --threads in every process (this
one, and every Ray worker through OMP_NUM_THREADS). The load side is serve_load.py.
Goals on 2 cores: batched at the highest level >= 3x the throughput of batch 1; at 1 client
the service's p50 within 1.5x of the in-process p50 (one at a time).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from serve_load import multipart, percentiles, run_level, wait_healthy
from swiftavatar.checkset.records import SHIPPED_DIR
from swiftavatar.cli.flags import add_config_flags, config_from_args

PHOTOS = ("astronaut.jpg", "grace_hopper.jpg")
FLAGS = ("align", "runtime", "max_batch_size", "batch_wait_ms", "max_ongoing_requests",
         "estimator_replicas", "estimator_cpus", "face_replicas", "face_cpus", "render_replicas",
         "render_cpus", "ingress_replicas", "ingress_cpus", "render_size")
STAGES = ("read", "decode", "face", "estimator", "render", "encode")
CROP_PX = 128
GOAL_RATIO, GOAL_LATENCY = 3.0, 1.5
# environment for Ray (and so Serve's controller, proxy and replicas) per --serve-tuning
# ("direct": Serve's direct ingress, experimental in Ray 2.60: the ingress replica serves HTTP
# itself on one of the DIRECT_PORTS ports above the proxy's, which Ray 2.60 still starts)
TUNINGS = {"default": {},
           "throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                          "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"},
           "direct": {"RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"},
           "throughput-direct": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                                 "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"}}
DIRECT_PORTS = 16


def load_text() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def face_jpegs(align: str) -> list[bytes]:
    """The check photos as head crops (mediapipe framing where installed), JPEG-encoded."""
    from PIL import Image

    from swiftavatar.face_align import mediapipe_available
    from swiftavatar.predictor import FaceFramer

    with FaceFramer("mediapipe" if mediapipe_available() else "none") as framer:
        out = []
        for name in PHOTOS:
            img = np.asarray(Image.open(SHIPPED_DIR / name).convert("RGB"))
            # align none: a head crop; mediapipe: the whole photo, for the service to frame
            sent = framer.frame(img, CROP_PX, name).crop if align == "none" else img
            buf = io.BytesIO()
            Image.fromarray(sent).save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
    return out


def in_process(args: argparse.Namespace, settings, jpegs: list[bytes]) -> list[dict]:
    """AvatarPredictor on the same images: one per call, then max-batch-size per call."""
    from swiftavatar.predictor import AvatarPredictor
    from swiftavatar.selfies import decode_rgb_image

    rows, times = [], {}
    with AvatarPredictor(args.model, align=settings.align, runtime=settings.runtime) as pred:
        def work(batch: list[bytes]) -> None:
            t = [time.perf_counter()]
            images = [decode_rgb_image(io.BytesIO(b), "the photo") for b in batch]
            t.append(time.perf_counter())
            results = pred.predict(images)
            t.append(time.perf_counter())
            for r in results:
                pred.render(r.vector, settings.render_size)
            t.append(time.perf_counter())
            for stage, a, b in zip(("decode", "frame+estimator", "render"), t, t[1:]):
                times.setdefault(stage, []).append((b - a) * 1e3)

        for label, size in (("in-process", 1), ("in-process batched", settings.max_batch_size)):
            batches = [[jpegs[(i + k) % len(jpegs)] for k in range(size)]
                       for i in range(len(jpegs))]
            for b in batches:
                work(b)                                                    # warm-up
            times.clear()
            lat, n, t0 = [], 0, time.perf_counter()
            while n < args.requests and time.perf_counter() - t0 < args.seconds:
                s = time.perf_counter()
                work(batches[len(lat) % len(batches)])
                lat.append(time.perf_counter() - s)
                n += size
            wall = time.perf_counter() - t0
            rows.append({"config": label, "clients": 1, "batch": size, "requests": n,
                         "errors": 0, "rps": n / wall, **percentiles(lat), "mean_batch": size,
                         "stages": {k: float(np.median(v)) for k, v in times.items()}})
    return rows


def call(deployment: str, method: str, *args) -> dict:
    """A deployment's method through a handle (Estimator.stats, Ingress.stage_times)."""
    from ray import serve

    from actors.serving.app import APP_NAME

    handle = serve.get_deployment_handle(deployment, APP_NAME)
    return getattr(handle, method).remote(*args).result()


def service_rows(args: argparse.Namespace, settings, jpegs: list[bytes], levels: list[int]
                 ) -> tuple[list[dict], dict]:
    """Start Ray and the service, run every level batched, redeploy with batch 1, rerun."""
    import ray

    tmp = tempfile.mkdtemp(prefix="ray-")
    ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False,
             object_store_memory=256 * 2 ** 20, _temp_dir=tmp, log_to_driver=False)
    # this process calls handles from plain threads, so its own router needs its own loop;
    # set after Ray started, the replicas keep the tuning's setting
    os.environ["RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP"] = "1"
    from ray import serve

    from actors.serving.app import APP_NAME, build_app, start_service

    rows: list[dict] = []
    try:
        threads = ray.get(ray.remote(num_cpus=0)(_torch_threads).remote())
        bodies = [multipart(j, args.model_name, args.crop_png) for j in jpegs]
        for i, batch in enumerate((settings.max_batch_size, 1)):
            s = dataclasses.replace(settings, max_batch_size=batch)
            if i == 0:
                start_service(s)
            else:
                serve.run(build_app(s.to_dict()), name=APP_NAME, route_prefix="/")
            s = dataclasses.replace(s, port=_service_port(args, s.port))
            label = "batch 1" if batch == 1 else f"batched {batch}, {s.batch_wait_ms:g} ms"
            for clients in levels:
                before = {}

                def start() -> None:
                    before.update(call("Estimator", "stats"))
                    call("Ingress", "stage_times", True)             # a new window

                row = run_level(s.port, bodies, clients, args, start)
                after = call("Estimator", "stats")
                stages = {k: v["p50_ms"] for k, v in call("Ingress", "stage_times").items()}
                crops = after["crops"] - before["crops"]
                nb = after["batches"] - before["batches"]
                rows.append({"config": label, "batch": batch, **row, "stages": stages,
                             "mean_batch": crops / nb if nb else 0.0})
                print(_line(rows[-1]), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows, {"worker_torch_threads": threads}


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


HEAD = (f"{'configuration':>24} {'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean batch':>10}")


def _line(r: dict) -> str:
    return (f"{r['config']:>24} {r['clients']:>7} {r['requests']:>8} {r['errors']:>6} "
            f"{r['rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['mean_batch']:>10.1f}")


def stage_table(rows: list[dict]) -> list[str]:
    """Median ms per stage: in the ingress for the service (and outside it: the client's p50
    less the ingress's, i.e. HTTP, the proxy and its hop to the ingress), in the library for
    the in-process rows."""
    cols = ("decode", "frame+estimator", *STAGES[2:], "total", "outside")
    out = [f"{'median ms per stage':>24} {'clients':>7} {'read':>6} " +
           " ".join(f"{c:>{max(8, len(c))}}" for c in cols)]
    for r in rows:
        st = dict(r.get("stages", {}))
        if "total" in st:
            st["outside"] = r["p50_ms"] - st["total"]
        cells = [f"{st[c]:>{max(8, len(c))}.1f}" if c in st else f"{'-':>{max(8, len(c))}}"
                 for c in cols]
        read = f"{st['read']:>6.1f}" if "read" in st else f"{'-':>6}"
        out.append(f"{r['config']:>24} {r['clients']:>7} {read} " + " ".join(cells))
    return out


def verdicts(rows: list[dict], levels: list[int]) -> dict:
    def find(batch_one: bool, clients: int) -> dict | None:
        return next((r for r in rows if not r["config"].startswith("in-process")
                     and (r["batch"] == 1) == batch_one and r["clients"] == clients), None)

    top, out = max(levels), {}
    batched, single, one = find(False, top), find(True, top), find(False, 1)
    if batched and single and single["rps"] > 0:
        out.update(throughput_ratio=batched["rps"] / single["rps"], throughput_clients=top)
    if one:
        out["latency_ratio"] = one["p50_ms"] / rows[0]["p50_ms"]          # in-process, 1 by 1
    return out


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, object]:
    from actors.serving.settings import ServeSettings, model_name

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pretrained:toon",
                    help="the estimator to serve (default pretrained:toon)")
    ap.add_argument("--levels", default="1,8,32", help="concurrent clients per level, comma "
                                                       "separated (default 1,8,32)")
    ap.add_argument("--requests", type=int, default=300,
                    help="answered requests per level at most (default 300)")
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="time per level at most, after its warm-up (default 20)")
    ap.add_argument("--warmup", type=int, default=3,
                    help="warm-up requests per client before each level (default 3)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads in every process (default 1)")
    ap.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2,
                    help="CPUs of the local Ray instance (default: this machine's)")
    ap.add_argument("--client", choices=("keepalive", "new"), default="keepalive",
                    help="keepalive (default): each client keeps one connection; new: a new "
                         "connection per request")
    ap.add_argument("--serve-tuning", choices=tuple(TUNINGS), default="default",
                    help="default: Serve as shipped; throughput: Serve's throughput-optimised "
                         "mode (RAY_SERVE_THROUGHPUT_OPTIMIZED=1: gRPC between replicas, user "
                         "code on the replica's own event loop), without direct ingress; "
                         "direct: Serve's direct ingress (RAY_SERVE_ENABLE_DIRECT_INGRESS=1, "
                         "experimental: no HTTP proxy, the ingress replica serves HTTP)")
    ap.add_argument("--crop-png", action="store_true",
                    help="ask for the crop's PNG too (default: crop=0, only what the "
                         "in-process rows make: the vector and the render)")
    ap.add_argument("--json", default=None, metavar="FILE",
                    help="also write the table and settings as JSON to FILE")
    add_config_flags(ap, ServeSettings, FLAGS,
                     defaults={"align": "none", "batch_wait_ms": 10.0, "render_size": 64})
    args = ap.parse_args(argv)
    try:
        levels = [int(x) for x in args.levels.split(",")]
    except ValueError:
        ap.error(f"--levels: {args.levels!r} is not a comma-separated list of whole numbers")
    if not levels or min(levels) < 1 or args.requests < 1 or args.seconds <= 0:
        ap.error("--levels, --requests and --seconds must be positive")
    args.levels_list = levels
    args.model_name = model_name(args.model)[0]
    settings = config_from_args(ServeSettings, args, models=(args.model,), port=_free_port())
    return args, settings


def _service_port(args: argparse.Namespace, port: int) -> int:
    """The port the service answers on: the proxy's, or with direct ingress the one its ingress
    replica was given (the first of the DIRECT_PORTS above the proxy's that answers)."""
    if "direct" not in args.serve_tuning:
        wait_healthy(port)
        return port
    end = time.time() + 120
    while time.time() < end:
        for p in range(port + 1, port + 1 + DIRECT_PORTS):
            try:
                wait_healthy(p, timeout=0.1)
                return p
            except RuntimeError:
                continue
        time.sleep(0.5)
    raise RuntimeError(f"no direct-ingress replica answered on 127.0.0.1:{port + 1}-"
                       f"{port + DIRECT_PORTS}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    from swiftavatar.cli import CliError

    try:
        args, settings = parse_args(argv)
    except CliError as err:
        print(f"bench_serve: {err}", file=sys.stderr)
        return 2
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.update(TUNINGS[args.serve_tuning])
    if "direct" in args.serve_tuning:           # the ingress replica's port range
        os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] = str(settings.port + 1)
        os.environ["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"] = str(
            settings.port + DIRECT_PORTS)
    import torch

    torch.set_num_threads(args.threads)
    load_before = load_text()
    jpegs = face_jpegs(settings.align)
    print(f"bench_serve: {args.model}, align {settings.align}, render {settings.render_size} "
          f"px, {args.threads} torch thread(s) per process, {args.ray_cpus} Ray CPUs, client "
          f"{args.client}, Serve tuning {args.serve_tuning}; estimator replicas {settings.estimator_replicas} x "
          f"{settings.estimator_cpus:g} CPU; load average before: {load_before}", flush=True)
    print(HEAD)
    print("-" * len(HEAD))
    from swiftavatar.predictor import PredictorError

    try:
        rows = in_process(args, settings, jpegs)
    except PredictorError as err:
        print(f"bench_serve: {err}", file=sys.stderr)
        return 2
    for r in rows:
        print(_line(r), flush=True)
    served, info = service_rows(args, settings, jpegs, args.levels_list)
    rows += served
    load_after = load_text()
    print("\n".join(stage_table(rows)))
    print(f"load average after: {load_after}; torch threads in a Ray worker: "
          f"{info['worker_torch_threads']}")
    v = verdicts(rows, args.levels_list)
    if "throughput_ratio" in v:
        print(f"batched / batch 1 at {v['throughput_clients']} clients: "
              f"{v['throughput_ratio']:.2f}x (goal >= {GOAL_RATIO:g}x: "
              f"{'met' if v['throughput_ratio'] >= GOAL_RATIO else 'NOT met'})")
    if "latency_ratio" in v:
        print(f"p50 at 1 client / in-process p50: {v['latency_ratio']:.2f}x (goal <= "
              f"{GOAL_LATENCY:g}x: {'met' if v['latency_ratio'] <= GOAL_LATENCY else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"rows": rows, "verdicts": v, "load_before": load_before, "load_after": load_after,
             "settings": settings.to_dict(), "threads": args.threads, "client": args.client,
             "serve_tuning": args.serve_tuning,
             "levels": args.levels_list, **info}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
