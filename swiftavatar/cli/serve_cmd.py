"""`swiftavatar engine serve NAME`: serve an engine over gRPC for remote clients."""
from __future__ import annotations

import argparse
import sys

from swiftavatar.cli import CliError


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
    ps.add_argument("--host", default="127.0.0.1",
                    help="interface to listen on (default 127.0.0.1, this machine only; "
                         "0.0.0.0 listens on every interface, without authentication)")
    ps.add_argument("--port", type=int, default=50051,
                    help="TCP port (default 50051; 0 picks a free port and prints it)")
    ps.add_argument("--workers", type=int, default=4,
                    help="threads handling requests (default 4); renders themselves run one "
                         "at a time")
    ps.add_argument("--max-message-mb", type=float, default=64.0,
                    help="largest request or reply in MiB (default 64); clients must allow as "
                         "much (GrpcEngine max_message_bytes)")
    ps.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from swiftavatar.engines.base import EngineError
    from swiftavatar.engines.grpc_server import serve_forever
    from swiftavatar.engines.registry import get_engine

    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be in 0..65535, got {args.port}")
    max_bytes = int(args.max_message_mb * 2 ** 20)
    if max_bytes < 1024:
        raise CliError(f"--max-message-mb must be at least 0.001, got {args.max_message_mb}")

    def ready(address: str) -> None:
        schema = engine.schema
        print(f"serving engine {schema.engine} (schema {schema.version}, fingerprint "
              f"{schema.fingerprint}) on {address}", flush=True)
        print(f"use it as grpc://{address}; Ctrl-C stops", file=sys.stderr, flush=True)

    try:
        engine = get_engine(args.name)
    except EngineError as e:
        raise CliError(f"cannot build engine {args.name!r}: {e}") from None
    with engine:
        try:
            serve_forever(engine, args.host, args.port, max_workers=args.workers,
                          max_message_bytes=max_bytes, on_ready=ready)
        except OSError as e:
            raise CliError(str(e)) from None
    print("stopped", file=sys.stderr, flush=True)
    return 0
