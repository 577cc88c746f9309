"""`grpc`: an engine served by another process (any language) over engine.proto.

The client needs no local knowledge of the engine: its schema and caps come from the server's
Describe at construction. Renders go out in requests of at most `batch_size` vectors, fewer
where the server's caps (vectors, pixels, message bytes) ask for it, with `in_flight` requests
pipelined and a deadline each; pixels travel raw when the server offers it (PNG otherwise).
UNAVAILABLE and DEADLINE_EXCEEDED are retried with exponential backoff, and a request refused
with RESOURCE_EXHAUSTED (a server that states no caps) is split in halves. A server that stays
unreachable, or whose schema no longer matches, raises `EngineUnavailableError` (no vector is
to blame).
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

import grpc
import numpy as np

from swiftavatar.engines.base import (Engine, EngineError, EngineUnavailableError,
                                      RenderOutput)
from swiftavatar.engines.grpc_auth import call_metadata, token_from_env
from swiftavatar.engines.proto import (DEFAULT_MAX_MESSAGE_BYTES, decode_png, decode_raw,
                                       engine_pb2 as pb, reply_bytes_bound, schema_from_proto)
from swiftavatar.engines.proto import engine_pb2_grpc as pb_grpc
from swiftavatar.engines.schema import EngineSchema, SchemaError, VectorBatch

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class RemoteRowsError(EngineError):
    """The server rendered a batch but some vectors failed. `rows` maps the row index (in the
    batch given to `render`) to the server's reason."""

    def __init__(self, message: str, rows: dict[int, str]) -> None:
        super().__init__(message)
        self.rows = rows


class GrpcEngine(Engine):
    """Client of a remote AvatarEngine at `address` (HOST:PORT, or grpc://HOST:PORT).

    `retries` is the number of attempts per call (at least 1); between attempts it waits
    backoff_s, 2 x backoff_s, 4 x backoff_s, ... `in_flight` requests are pipelined (sent
    before the first reply is read); `raw_pixels=False` asks for PNGs even where the server
    offers raw pixels. A server started with `--token` needs the same secret in the
    environment variable SWIFTAVATAR_ENGINE_TOKEN here (Ray workers need it too: local ones
    inherit it, a cluster's get it through the job's runtime_env env_vars).
    """

    name = "grpc"
    run_options = frozenset({"address", "timeout_s", "retries", "backoff_s",
                             "max_message_bytes", "batch_size", "in_flight", "raw_pixels"})

    def __init__(self, address: str, *, timeout_s: float = 30.0, retries: int = 3,
                 backoff_s: float = 0.2, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 batch_size: int = 32, in_flight: int = 4, raw_pixels: bool = True) -> None:
        address = address[len("grpc://"):] if address.startswith("grpc://") else address
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"gRPC engine address must be HOST:PORT (e.g. 127.0.0.1:50051), "
                             f"got {address!r}")
        for label, value, low in (("timeout_s", timeout_s, 1e-3), ("retries", retries, 1),
                                  ("backoff_s", backoff_s, 0.0), ("batch_size", batch_size, 1),
                                  ("max_message_bytes", max_message_bytes, 1024),
                                  ("in_flight", in_flight, 1)):
            if not value >= low:
                raise ValueError(f"gRPC engine option {label} must be >= {low}, got {value}")
        self.address = address
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_message_bytes = int(max_message_bytes)
        self.batch_size = int(batch_size)
        self.in_flight = int(in_flight)
        self._metadata = call_metadata(token_from_env())
        self._channel: grpc.Channel | None = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes)])
        self._stub = pb_grpc.AvatarEngineStub(self._channel)
        try:
            reply = self._call("Describe", pb.DescribeRequest())
            self._schema = schema_from_proto(reply)
        except SchemaError as e:
            self.close()
            raise EngineError(f"gRPC engine at {address} described an invalid schema: {e}") \
                from None
        except grpc.RpcError as e:  # e.g. UNIMPLEMENTED: not an AvatarEngine server
            self.close()
            raise self._failed("Describe", e) from None
        except BaseException:
            self.close()
            raise
        self.default_size = int(reply.default_size) or Engine.default_size
        self.raw_pixels = bool(raw_pixels and reply.raw_pixels)
        self._caps = (int(reply.max_vectors_per_request), int(reply.max_pixels_per_request),
                      int(reply.max_message_bytes))  # 0: the server states no cap

    @property
    def schema(self) -> EngineSchema:
        return self._schema

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # ---- calls -------------------------------------------------------------------------
    def _call(self, method: str, request: Any, first: grpc.Future | None = None) -> Any:
        """One RPC with deadline and retries. Retryable failures that persist become
        EngineError; other failures propagate as grpc.RpcError for the caller to judge.
        `first`, the call already sent without waiting, is the first attempt."""
        if self._channel is None:
            raise EngineUnavailableError(f"gRPC engine at {self.address} is closed")
        rpc = getattr(self._stub, method)
        last: grpc.RpcError | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                if attempt == 0 and first is not None:
                    return first.result()
                return rpc(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() not in _RETRYABLE:
                    raise
                last = e
        assert last is not None
        if last.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise EngineError(
                f"gRPC engine at {self.address} did not answer {method} within "
                f"{self.timeout_s:g} s in {self.retries} attempts; a slow engine needs a "
                f"larger timeout_s or a smaller batch_size") from None
        port = self.address.rpartition(":")[2]
        raise EngineUnavailableError(
            f"gRPC engine at {self.address} is unreachable after {self.retries} attempts "
            f"({last.details()}). Start one with `swiftavatar engine serve NAME --port {port}`"
        ) from None

    def _failed(self, method: str, e: grpc.RpcError) -> EngineError:
        return EngineError(f"gRPC engine at {self.address}: {method} failed with "
                           f"{e.code().name}: {e.details()}")

    # ---- rendering ---------------------------------------------------------------------
    def rows_per_request(self, size: int) -> int:
        """How many vectors at size x size one request may carry: `batch_size`, lowered to fit
        the server's stated caps and both ends' message limit. Raises EngineError when not even
        one fits."""
        max_vectors, max_pixels, server_bytes = self._caps
        limit = min(self.max_message_bytes, server_bytes or self.max_message_bytes)
        masks, raw = self._schema.supports_masks, self.raw_pixels
        empty = reply_bytes_bound(0, size, masks=masks, raw=raw)
        per_row = reply_bytes_bound(1, size, masks=masks, raw=raw) - empty
        if empty + per_row > limit:
            raise EngineError(
                f"gRPC engine at {self.address}: one {size}x{size} render does not fit the "
                f"message limit ({empty + per_row} > {limit} bytes); raise max_message_bytes "
                f"on both client and server (`--max-message-mb`) or render smaller")
        if max_pixels and size * size > max_pixels:
            raise EngineError(
                f"gRPC engine at {self.address}: one {size}x{size} render is over the server's "
                f"cap of {max_pixels} pixels per request; render smaller or restart the server "
                f"with a larger --max-pixels-per-request")
        caps = [self.batch_size, (limit - empty) // per_row]
        caps += [max_vectors] if max_vectors else []
        caps += [max_pixels // (size * size)] if max_pixels else []
        return min(caps)

    def _render(self, batch: VectorBatch, size: int) -> RenderOutput:
        n = len(batch)
        images = np.empty((n, size, size, 3), np.uint8)  # (N, H, W, 3)
        masks = np.empty((n, size, size), np.uint8) if self._schema.supports_masks else None
        step = self.rows_per_request(size)
        todo = deque((lo, min(lo + step, n)) for lo in range(0, n, step))
        sent: deque[tuple[int, int, Any, grpc.Future]] = deque()
        try:
            while todo or sent:
                while todo and len(sent) < self.in_flight:  # keep the pipeline full
                    lo, hi = todo.popleft()
                    request = self._request(batch, lo, hi, size)
                    sent.append((lo, hi, request, self._send(request, queued=len(sent))))
                lo, hi, request, future = sent.popleft()
                failures: dict[int, str] = {}
                self._render_rows(batch, lo, hi, size, images, masks, failures,
                                  (request, future))
                if failures:  # stop at the first request with failures: the caller isolates
                    rows = sorted(failures)
                    shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
                    raise RemoteRowsError(
                        f"gRPC engine at {self.address} could not render row {rows[0]}: "
                        f"{failures[rows[0]]} ({len(rows)} of rows {lo}..{hi - 1} failed: "
                        f"{shown})", failures)
        finally:
            for *_, future in sent:
                future.cancel()
        return RenderOutput(images, masks)

    def _request(self, batch: VectorBatch, lo: int, hi: int, size: int) -> pb.RenderRequest:
        schema = self._schema
        return pb.RenderRequest(
            vectors=[pb.Vector(continuous=batch.continuous[r].tolist(),
                               discrete=batch.discrete[r].tolist()) for r in range(lo, hi)],
            size=size, want_masks=schema.supports_masks, schema_version=schema.version,
            schema_fingerprint=schema.fingerprint, raw_pixels=self.raw_pixels)

    def _send(self, request: pb.RenderRequest, queued: int) -> grpc.Future:
        """Send a Render request without waiting for its reply. It may wait on the server
        behind the `queued` requests sent before it, so its deadline allows for theirs."""
        if self._channel is None:
            raise EngineUnavailableError(f"gRPC engine at {self.address} is closed")
        return self._stub.Render.future(request, timeout=self.timeout_s * (1 + queued),
                                        metadata=self._metadata)

    def _render_rows(self, batch: VectorBatch, lo: int, hi: int, size: int, images: np.ndarray,
                     masks: np.ndarray | None, failures: dict[int, str],
                     sent: tuple[pb.RenderRequest, grpc.Future] | None = None) -> None:
        """Render rows lo..hi-1 into images/masks (`sent`: their request, already on its way);
        record per-row errors in `failures`."""
        request, future = sent or (self._request(batch, lo, hi, size), None)
        try:
            reply = self._call("Render", request, future)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:  # the server's schema changed
                raise EngineUnavailableError(str(self._failed("Render", e))) from None
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise self._failed("Render", e) from None
            if hi - lo == 1:
                raise EngineError(
                    f"gRPC engine at {self.address}: one {size}x{size} render does not fit the "
                    f"server's limits ({e.details()}); raise them on both client and server "
                    f"or render smaller") from None
            mid = (lo + hi) // 2
            self._render_rows(batch, lo, mid, size, images, masks, failures)
            self._render_rows(batch, mid, hi, size, images, masks, failures)
            return
        if len(reply.results) != hi - lo:
            raise EngineError(f"gRPC engine at {self.address} answered {len(reply.results)} "
                              f"results for {hi - lo} vectors (the protocol needs one each)")
        for r, res in zip(range(lo, hi), reply.results):
            if res.error:
                failures[r] = res.error
                continue
            try:
                images[r] = _picture(res.image_raw, res.image_png, size, mask=False)
                if masks is not None:
                    if not (res.mask_raw or res.mask_png):
                        raise ValueError("no mask, though the engine says it supports masks")
                    masks[r] = _picture(res.mask_raw, res.mask_png, size, mask=True)
            except ValueError as e:
                failures[r] = f"the server sent a bad result: {e}"


def _picture(raw: bytes, png: bytes, size: int, *, mask: bool) -> np.ndarray:
    """A result's image or mask from whichever encoding the server used."""
    return decode_raw(raw, size, mask=mask) if raw else decode_png(png, size, mask=mask)
