"""Serve any in-process `Engine` over gRPC (engine.proto), so remote clients can render with it.

Renders run one request at a time (engines need not be thread-safe); decoding requests and
encoding PNGs run on up to `max_workers` threads. Bad vectors come back as per-vector errors
naming the parameter; whole-request problems as gRPC status codes (see engine.proto).
"""
from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import Callable

import grpc
import numpy as np

from swiftavatar.engines.base import Engine, EngineError
from swiftavatar.engines.proto import (DEFAULT_MAX_MESSAGE_BYTES, encode_png, engine_pb2 as pb,
                                       schema_to_proto)
from swiftavatar.engines.proto import engine_pb2_grpc as pb_grpc
from swiftavatar.engines.schema import VectorBatch, row_errors

log = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 16, 2048  # the sizes `Engine.render` accepts


class EngineServicer(pb_grpc.AvatarEngineServicer):
    """The AvatarEngine service over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.schema = engine.schema
        self._describe = schema_to_proto(self.schema, engine.default_size)
        self._lock = threading.Lock()

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext
                 ) -> pb.DescribeReply:
        return self._describe

    def Render(self, request: pb.RenderRequest, context: grpc.ServicerContext) -> pb.RenderReply:
        schema = self.schema
        if request.schema_version and request.schema_version != schema.version:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"vectors are for schema version {request.schema_version!r}; this "
                          f"engine ({schema.engine}) has {schema.version!r}: call Describe again")
        if request.schema_fingerprint and request.schema_fingerprint != schema.fingerprint:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"vectors are for schema fingerprint {request.schema_fingerprint}; "
                          f"this engine ({schema.engine} {schema.version}) has "
                          f"{schema.fingerprint}: call Describe again")
        size = int(request.size or self.engine.default_size)
        if not MIN_SIZE <= size <= MAX_SIZE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"size {size} is outside {MIN_SIZE}..{MAX_SIZE} pixels")
        cont, disc, errors = self._decode(request)
        masks_out = bool(request.want_masks and schema.supports_masks)
        results = [pb.RenderResult() for _ in errors]
        good = [i for i, e in enumerate(errors) if not e]
        for i, (img, mask, err) in zip(good, self._render_rows(cont[good], disc[good], size)):
            if err:
                results[i].error = err
                continue
            results[i].image_png = encode_png(img)
            if masks_out and mask is not None:
                results[i].mask_png = encode_png(mask)
        for i, e in enumerate(errors):
            if e:
                results[i].error = e
        return pb.RenderReply(results=results)

    def _decode(self, request: pb.RenderRequest) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Vectors -> (N, n_c) float32, (N, n_d) int64 and a per-row error ('' when valid)."""
        schema = self.schema
        n, nc, nd = len(request.vectors), schema.n_continuous, schema.n_discrete
        cont = np.zeros((n, nc), np.float32)  # (N, n_c)
        disc = np.zeros((n, nd), np.int64)  # (N, n_d)
        errors = [""] * n
        for i, v in enumerate(request.vectors):
            if len(v.continuous) != nc:
                errors[i] = (f"expected {nc} continuous values "
                             f"({', '.join(p.name for p in schema.continuous) or 'none'}), "
                             f"got {len(v.continuous)}")
            elif len(v.discrete) != nd:
                errors[i] = (f"expected {nd} discrete values "
                             f"({', '.join(p.name for p in schema.discrete) or 'none'}), "
                             f"got {len(v.discrete)}")
            else:
                cont[i] = v.continuous
                disc[i] = v.discrete
        for i, msg in enumerate(row_errors(schema, cont, disc)):
            errors[i] = errors[i] or msg
        return cont, disc, errors

    def _render_rows(self, cont: np.ndarray, disc: np.ndarray, size: int
                     ) -> list[tuple[np.ndarray | None, np.ndarray | None, str]]:
        """Render valid rows as one batch; if the batch fails, row by row to isolate the
        failures. Returns (image, mask, error) per row."""
        if len(cont) == 0:
            return []
        try:
            with self._lock:
                out = self.engine.render(VectorBatch(self.schema, cont, disc), size)
            masks = out.masks if out.masks is not None else [None] * len(out)
            return [(img, m, "") for img, m in zip(out.images, masks)]
        except Exception as e:  # noqa: BLE001 - isolate the bad rows below
            if len(cont) == 1:
                return [(None, None, _describe_error(e))]
        return [self._render_rows(cont[i:i + 1], disc[i:i + 1], size)[0]
                for i in range(len(cont))]


def _describe_error(e: Exception) -> str:
    if isinstance(e, (EngineError, ValueError)):
        return str(e)
    log.error("engine raised while rendering one vector", exc_info=e)
    return f"engine failed: {type(e).__name__}: {e}"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 0, *, max_workers: int = 4,
          max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> tuple[grpc.Server, int]:
    """Start serving `engine` on host:port (port 0 picks a free one). Returns the running
    server and the bound port; stop it with `server.stop(grace)`."""
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if max_message_bytes < 1024:
        raise ValueError(f"max_message_bytes must be >= 1024, got {max_message_bytes}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="engine-rpc"),
        options=[("grpc.max_receive_message_length", int(max_message_bytes)),
                 ("grpc.max_send_message_length", int(max_message_bytes)),
                 ("grpc.so_reuseport", 0)])  # a busy port must fail, not be shared
    pb_grpc.add_AvatarEngineServicer_to_server(EngineServicer(engine), server)
    address = _address(host, port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as e:
        bound, why = 0, str(e)
    else:
        why = "bind failed"
    if not bound:
        server.stop(None)
        raise OSError(f"cannot listen on {address} ({why}): is the port in use or the host not "
                      f"this machine's? Pick another port (0 picks a free one)")
    server.start()
    return server, bound


def serve_forever(engine: Engine, host: str = "127.0.0.1", port: int = 0, *,
                  max_workers: int = 4, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                  grace_s: float = 2.0, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then stop, finishing requests in flight for up to
    `grace_s` (the caller closes the engine). `on_ready` receives the bound address once
    listening. Signal handlers are installed only when called from the main thread."""
    stop = threading.Event()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        server, bound = serve(engine, host, port, max_workers=max_workers,
                              max_message_bytes=max_message_bytes)
        try:
            if on_ready is not None:
                on_ready(_address(host, bound))
            while not stop.wait(0.5):
                pass
        finally:
            server.stop(grace_s).wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
