"""`swiftavatar engines list|describe`: what engines exist and what their vectors hold."""
from __future__ import annotations

import argparse

from swiftavatar.engines.registry import available_engines, get_engine
from swiftavatar.engines.schema import iter_param_docs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engines", help="list avatar engines or describe one's parameters")
    esub = p.add_subparsers(dest="engines_command", metavar="ACTION")
    esub.required = True

    pl = esub.add_parser("list", help="list the engines this installation can build")
    pl.set_defaults(handler=_list)

    pd = esub.add_parser("describe", help="print an engine's parameter schema")
    pd.add_argument("name", help="engine name (see `swiftavatar engines list`) or "
                                 "grpc://HOST:PORT for a remote engine")
    pd.add_argument("--json", action="store_true", help="print the schema as JSON")
    pd.set_defaults(handler=_describe)


def _list(args: argparse.Namespace) -> int:
    for name, target in available_engines().items():
        print(f"{name:<12} {target}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    with get_engine(args.name) as engine:
        schema = engine.schema
        if args.json:
            print(schema.to_json(indent=2))
        else:
            print("\n".join(iter_param_docs(schema)))
    return 0
