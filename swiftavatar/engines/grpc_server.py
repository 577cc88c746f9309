"""Serve any in-process `Engine` over gRPC (engine.proto), so remote clients can render with it.

Renders run one request at a time (engines need not be thread-safe); decoding requests and
encoding replies run on up to `max_workers` threads, so a client's pipelined requests overlap
with rendering. Bad vectors come back as per-vector errors naming the parameter; whole-request
problems as gRPC status codes (see engine.proto). Work per request is capped (vectors, pixels,
reply bytes): a request over a cap is refused with RESOURCE_EXHAUSTED before anything renders,
and Describe states the caps so that clients split their batches to fit.
"""
from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from concurrent import futures
from typing import Any, Callable

import grpc
import numpy as np

from swiftavatar.engines.base import Engine, EngineError
from swiftavatar.engines.grpc_auth import TokenCheck
from swiftavatar.engines.proto import (DEFAULT_MAX_MESSAGE_BYTES, MAX_ERROR_CHARS, encode_png,
                                       engine_pb2 as pb, raw_view, reply_bytes_bound,
                                       schema_to_proto)
from swiftavatar.engines.proto import engine_pb2_grpc as pb_grpc
from swiftavatar.engines.proto.reply_encoder import Buffer, encode_render_reply
from swiftavatar.engines.schema import VectorBatch, row_errors

log = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 16, 2048  # the sizes `Engine.render` accepts
DEFAULT_MAX_VECTORS = 64  # per Render request
DEFAULT_MAX_PIXELS = 64 * 512 * 512  # vectors x size x size per Render request
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


class EngineServicer(pb_grpc.AvatarEngineServicer):
    """The AvatarEngine service over one engine."""

    def __init__(self, engine: Engine, *, max_vectors: int = DEFAULT_MAX_VECTORS,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.engine = engine
        self.schema = engine.schema
        self.max_vectors, self.max_pixels = int(max_vectors), int(max_pixels)
        self.max_message_bytes = int(max_message_bytes)
        self._describe = schema_to_proto(self.schema, engine.default_size)
        self._describe.max_vectors_per_request = self.max_vectors
        self._describe.max_pixels_per_request = self.max_pixels
        self._describe.max_message_bytes = self.max_message_bytes
        self._describe.raw_pixels = True
        self._lock = threading.Lock()

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext
                 ) -> pb.DescribeReply:
        return self._describe

    def Render(self, request: pb.RenderRequest, context: grpc.ServicerContext) -> bytes:
        """The serialized RenderReply (see reply_encoder)."""
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
        masks_out = bool(request.want_masks and schema.supports_masks)
        too_much = self._over_caps(len(request.vectors), size, masks_out, request.raw_pixels)
        if too_much:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, too_much)
        cont, disc, errors = self._decode(request)
        results: list[dict[str, Buffer]] = [{} for _ in errors]
        good = [i for i, e in enumerate(errors) if not e]
        for i, (img, mask, err) in zip(good, self._render_rows(cont[good], disc[good], size)):
            errors[i] = err
            if err:
                continue
            kind, encode = ("raw", raw_view) if request.raw_pixels else ("png", encode_png)
            results[i] = {f"image_{kind}": encode(img)}
            if masks_out and mask is not None:
                results[i][f"mask_{kind}"] = encode(mask)
        for i, e in enumerate(errors):
            if e:
                results[i] = {"error": e[:MAX_ERROR_CHARS].encode()}
        return encode_render_reply(results)

    def _over_caps(self, n: int, size: int, masks: bool, raw: bool) -> str:
        """Why a request for n vectors at size x size is more work than this server takes
        ('' when it is not); checked before anything is decoded or rendered."""
        if n > self.max_vectors:
            return (f"{n} vectors in one request; this server renders at most "
                    f"{self.max_vectors} per request (engine serve --max-vectors-per-request): "
                    f"send smaller batches")
        if n * size * size > self.max_pixels:
            return (f"{n} vectors at {size}x{size} are {n * size * size} pixels; this server "
                    f"renders at most {self.max_pixels} pixels per request (engine serve "
                    f"--max-pixels-per-request): send fewer vectors or a smaller size")
        bound = reply_bytes_bound(n, size, masks=masks, raw=raw)
        if bound > self.max_message_bytes:
            return (f"the reply to {n} vectors at {size}x{size} could take {bound} bytes, over "
                    f"this server's message limit of {self.max_message_bytes} bytes (engine "
                    f"serve --max-message-mb): send fewer vectors or a smaller size")
        return ""

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


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, *, token: bool = False) -> str:
    """The one-line warning for a server without a token that other machines can reach (''
    on loopback or with a token)."""
    if token or is_loopback(host):
        return ""
    return (f"warning: listening on {host}, reachable from other machines, and this server "
            f"has no authentication: anyone who can connect can make it render; use --token, "
            f"a firewall or --host 127.0.0.1")


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 0, *, max_workers: int = 8,
          max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
          max_vectors_per_request: int = DEFAULT_MAX_VECTORS,
          max_pixels_per_request: int = DEFAULT_MAX_PIXELS,
          token: str = "") -> tuple[grpc.Server, int]:
    """Start serving `engine` on host:port (port 0 picks a free one). Returns the running
    server and the bound port; stop it with `server.stop(grace)`. Requests over
    `max_vectors_per_request`, `max_pixels_per_request` (vectors x size x size) or whose reply
    could exceed `max_message_bytes` are refused before rendering; with a `token`, calls
    without it are refused (grpc_auth)."""
    for label, value, low in (("max_workers", max_workers, 1),
                              ("max_message_bytes", max_message_bytes, 1024),
                              ("max_vectors_per_request", max_vectors_per_request, 1),
                              ("max_pixels_per_request", max_pixels_per_request,
                               MIN_SIZE * MIN_SIZE)):
        if value < low:
            raise ValueError(f"{label} must be >= {low}, got {value}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="engine-rpc"),
        interceptors=[TokenCheck(token)] if token else None,
        options=[("grpc.max_receive_message_length", int(max_message_bytes)),
                 ("grpc.max_send_message_length", int(max_message_bytes)),
                 ("grpc.so_reuseport", 0)])  # a busy port must fail, not be shared
    servicer = EngineServicer(engine, max_vectors=max_vectors_per_request,
                              max_pixels=max_pixels_per_request,
                              max_message_bytes=max_message_bytes)
    _add_servicer(servicer, server)
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


def _add_servicer(servicer: EngineServicer, server: grpc.Server) -> None:
    """engine_pb2_grpc.add_AvatarEngineServicer_to_server, except that Render's reply comes
    serialized already (reply_encoder)."""
    handlers = {
        "Describe": grpc.unary_unary_rpc_method_handler(
            servicer.Describe, request_deserializer=pb.DescribeRequest.FromString,
            response_serializer=pb.DescribeReply.SerializeToString),
        "Render": grpc.unary_unary_rpc_method_handler(
            servicer.Render, request_deserializer=pb.RenderRequest.FromString,
            response_serializer=bytes),
    }
    service = pb.DESCRIPTOR.services_by_name["AvatarEngine"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def serve_forever(engine: Engine, host: str = "127.0.0.1", port: int = 0, *,
                  grace_s: float = 2.0, on_ready: Callable[[str], None] | None = None,
                  **serve_options: Any) -> None:
    """Serve until SIGINT or SIGTERM, then stop, finishing requests in flight for up to
    `grace_s` (the caller closes the engine). `on_ready` receives the bound address once
    listening; `serve_options` are serve()'s. Signal handlers are installed only when called
    from the main thread."""
    stop = threading.Event()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        server, bound = serve(engine, host, port, **serve_options)
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
