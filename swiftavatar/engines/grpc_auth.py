"""The optional shared token of the gRPC engine server (`engine serve --token`).

Both ends read the secret from the environment variable `SWIFTAVATAR_ENGINE_TOKEN`, never from
a command line (visible to every user of the machine) or an engine spec (saved with datasets).
The client sends it as `authorization: Bearer <token>` metadata on every call; the server
compares it in constant time and refuses anything else with UNAUTHENTICATED before the call
reaches the engine. Without TLS the token travels in clear: it keeps out callers who do not
know it, not someone who can read the traffic.
"""
from __future__ import annotations

import hmac
import os
from typing import Any, Callable

import grpc

TOKEN_ENV = "SWIFTAVATAR_ENGINE_TOKEN"
_KEY = "authorization"


def token_from_env() -> str:
    """The shared token, or '' when the variable is unset or empty."""
    return os.environ.get(TOKEN_ENV, "").strip()


def call_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The metadata a client sends with every call (none without a token)."""
    return ((_KEY, f"Bearer {token}"),) if token else ()


class TokenCheck(grpc.ServerInterceptor):
    """Lets through only calls whose metadata carries `token`."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the shared token must not be empty")
        self._want = f"Bearer {token}".encode()

    def intercept_service(self, continuation: Callable[[Any], Any],
                          details: grpc.HandlerCallDetails) -> Any:
        got = next((v for k, v in details.invocation_metadata or () if k == _KEY), "")
        got_bytes = got.encode() if isinstance(got, str) else bytes(got)
        if hmac.compare_digest(got_bytes, self._want):
            return continuation(details)
        return grpc.unary_unary_rpc_method_handler(_refuse)


def _refuse(request: Any, context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNAUTHENTICATED,
                  f"this server refuses calls without its shared token: set {TOKEN_ENV} where "
                  f"the client runs to the value the server was started with")
