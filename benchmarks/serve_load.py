"""The load side of benchmarks/bench_serve.py: client threads, each with its own HTTP
connection to the service on 127.0.0.1, sending POST /v1/avatars (multipart, a JPEG) and
timing each answer; latency percentiles. Standard library and numpy only: no Ray."""
from __future__ import annotations

import argparse
import http.client
import threading
import time
import uuid

import numpy as np


def percentiles(latencies: list[float]) -> dict[str, float]:
    a = np.asarray(latencies) * 1e3
    return {f"p{q}_ms": float(np.percentile(a, q)) if a.size else float("nan")
            for q in (50, 95, 99)}


def multipart(jpeg: bytes, model: str, crop: bool) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    field = "--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n".format
    body = (field(boundary, "model", model) + field(boundary, "crop", int(crop)) +
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; "
            f"filename=\"face.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    return body + jpeg + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


class Client:
    """One client thread's HTTP connection to 127.0.0.1 (kept alive, or new per request)."""

    def __init__(self, port: int, keepalive: bool) -> None:
        self.port, self.keepalive, self.conn = port, keepalive, None

    def post(self, body: bytes, ctype: str) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            self.conn.request("POST", "/v1/avatars", body, {"Content-Type": ctype})
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            return 0
        if not self.keepalive or resp.will_close:
            self.close()
        if resp.status == 200 and b'"vector"' not in data:
            return -1
        return resp.status

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_level(port: int, bodies: list[tuple[bytes, str]], clients: int,
              args: argparse.Namespace, on_start=lambda: None) -> dict:
    """`clients` threads: warm-up, then (after `on_start()`) requests until --requests or
    --seconds."""
    conns = [Client(port, args.client == "keepalive") for _ in range(clients)]
    lock, lat, errors, tickets = threading.Lock(), [], [0], [0]
    warm, go = threading.Barrier(clients + 1), threading.Event()
    deadline = [0.0]

    def worker(i: int) -> None:
        conn = conns[i]
        for k in range(args.warmup):
            conn.post(*bodies[(i + k) % len(bodies)])
        warm.wait()
        go.wait()
        while True:
            with lock:
                if tickets[0] >= args.requests or time.perf_counter() > deadline[0]:
                    break
                tickets[0] += 1
                k = tickets[0]
            s = time.perf_counter()
            status = conn.post(*bodies[k % len(bodies)])
            took = time.perf_counter() - s
            with lock:
                if status == 200:
                    lat.append(took)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    warm.wait()
    on_start()
    t0 = time.perf_counter()
    deadline[0] = t0 + args.seconds
    go.set()
    for t in threads:
        t.join(args.seconds + 180)
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": len(lat), "errors": errors[0],
            "rps": len(lat) / wall, **percentiles(lat)}


def wait_healthy(port: int, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.time() > end:
            raise RuntimeError(f"the service on 127.0.0.1:{port} did not answer /healthz")
        time.sleep(0.5)


__all__ = ["Client", "multipart", "percentiles", "run_level", "wait_healthy"]
