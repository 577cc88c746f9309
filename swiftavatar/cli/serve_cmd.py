"""`swiftavatar engine serve NAME`: serve an engine over gRPC for remote clients."""
from __future__ import annotations

import argparse
import sys

from dataclasses import dataclass

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, config_from_args
from swiftavatar.config import StageConfig, option


@dataclass(frozen=True)
class ServeConfig(StageConfig):
    """How `engine serve` listens (the engine is its argument)."""

    host: str = option("127.0.0.1", help="interface to listen on (default {default}, this "
                                         "machine only; 0.0.0.0 listens on every interface, "
                                         "without authentication)")
    port: int = option(50051, help="TCP port (default {default}; 0 picks a free port and "
                                   "prints it)")
    workers: int = option(8, help="threads handling requests (default {default}; clients "
                                  "pipeline several requests each); renders themselves run "
                                  "one at a time")
    max_message_mb: float = option(64.0, help="largest request or reply in MiB (default "
                                              "{default}); clients must allow as much "
                                              "(GrpcEngine max_message_bytes)")

    max_vectors_per_request: int = option(
        64, help="most vectors one request may render (default {default}); a request over it "
                 "is refused before rendering, and clients split their batches to fit")
    max_pixels_per_request: int = option(
        64 * 512 * 512, help="most pixels (vectors x size x size) one request may render "
                             "(default {default}, 64 renders at 512 px); refused and split "
                             "like --max-vectors-per-request")

    token: bool = option(False, help="refuse clients without the shared secret in "
                                     "$SWIFTAVATAR_ENGINE_TOKEN (set it here and where the "
                                     "clients run; it is never taken from a command line)")

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 2 ** 20)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.workers >= 1, "workers", "must be >= 1")
        need(0 <= self.port <= 65535, "port", "must be in 0..65535")
        need(self.max_message_bytes >= 1024, "max_message_mb", "must be at least 0.001")
        need(self.max_vectors_per_request >= 1, "max_vectors_per_request", "must be >= 1")
        need(self.max_pixels_per_request >= 16 * 16, "max_pixels_per_request",
             "must be >= 256 (one 16x16 render)")
        return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engine", help="run an avatar engine as a service")
    esub = p.add_subparsers(dest="engine_command", metavar="ACTION")
    esub.required = True
    ps = esub.add_parser(
        "serve", help="serve an engine over gRPC (engine.proto) until Ctrl-C or SIGTERM",
        description="Serve an engine over gRPC so that render jobs elsewhere can use it as "
                    "grpc://HOST:PORT. Prints the address it listens on, then serves until "
                    "interrupted (Ctrl-C or SIGTERM), finishing requests in flight.")
    ps.add_argument("name", help="engine name (see `swiftavatar engines list`) or module:attr")
    add_config_flags(ps, ServeConfig)
    ps.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from swiftavatar.engines.base import EngineError
    from swiftavatar.engines.grpc_auth import TOKEN_ENV, token_from_env
    from swiftavatar.engines.grpc_server import exposure_warning, serve_forever
    from swiftavatar.engines.registry import get_engine

    config = config_from_args(ServeConfig, args)
    token = token_from_env() if config.token else ""
    if config.token and not token:
        raise CliError(f"--token needs the shared secret in ${TOKEN_ENV}: set it, here and "
                       f"where the clients run, to a long random string")

    def ready(address: str) -> None:
        schema = engine.schema
        print(f"serving engine {schema.engine} (schema {schema.version}, fingerprint "
              f"{schema.fingerprint}) on {address}", flush=True)
        host, _, port = address.rpartition(":")
        if host.strip("[]") in ("0.0.0.0", "::"):    # every interface: not a client address
            use = (f"use it as grpc://127.0.0.1:{port} here, or grpc://THIS-HOST:{port} "
                   f"from another machine")
        else:
            use = f"use it as grpc://{address}"
        print(f"{use}; Ctrl-C stops", file=sys.stderr, flush=True)

    try:
        engine = get_engine(args.name)
    except EngineError as e:
        raise CliError(f"cannot build engine {args.name!r}: {e}") from None
    warning = exposure_warning(config.host, token=bool(token))
    if warning:
        print(f"swiftavatar engine serve: {warning}", file=sys.stderr, flush=True)
    with engine:
        try:
            serve_forever(engine, config.host, config.port, max_workers=config.workers,
                          max_message_bytes=config.max_message_bytes,
                          max_vectors_per_request=config.max_vectors_per_request,
                          max_pixels_per_request=config.max_pixels_per_request, token=token,
                          on_ready=ready)
        except OSError as e:
            raise CliError(str(e)) from None
    print("stopped", file=sys.stderr, flush=True)
    return 0
