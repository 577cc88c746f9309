"""The `swiftavatar` command line. Each subcommand lives in its own module in this package and
exposes `register(subparsers)`; the module's handler returns an exit code. A command's flags,
defaults and help come from its config dataclass's fields (`swiftavatar.cli.flags`); those
that need a heavy import are added only when that command runs (`swiftavatar.cli.parser`).

Errors a user can fix (bad flag values, missing files, unknown engines, invalid vectors) are
raised as `CliError` or one of the library's ValueError subclasses and printed as one line
naming the problem, with exit code 2. An engine that cannot run (`EngineError`: a server that
is down, missing assets) is printed the same way with exit code 1. Anything else is a bug and
keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Subcommand modules, in the order `--help` lists them.
_COMMAND_MODULES = (
    "swiftavatar.cli.engines_cmd",
    "swiftavatar.cli.render_cmd",
    "swiftavatar.cli.demo_cmd",
    "swiftavatar.cli.serve_cmd",
    "swiftavatar.cli.train_gen_cmd",
    "swiftavatar.cli.produce_cmd",
    "swiftavatar.cli.correspondence_cmd",
    "swiftavatar.cli.train_est_cmd",
    "swiftavatar.cli.predict_cmd",
    "swiftavatar.cli.sweep_cmd",
)


class CliError(Exception):
    """A problem with what the user asked for; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swiftavatar",
        description="SwiftAvatar on Ray: predict avatar-engine parameters from a selfie, "
                    "trained without labels (AAAI 2023).",
    )
    from swiftavatar import __version__
    from swiftavatar.cli.parser import CommandParser

    parser.add_argument("--version", action="version", version=f"swiftavatar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # a subcommand module not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from swiftavatar.engines.base import EngineError
    from swiftavatar.engines.registry import UnknownEngineError
    from swiftavatar.engines.schema import InvalidVectorError, SchemaError

    try:
        return int(args.handler(args) or 0)
    except (CliError, UnknownEngineError, InvalidVectorError, SchemaError, FileNotFoundError,
            ValueError) as e:
        print(f"swiftavatar {args.command}: error: {e}", file=sys.stderr)
        return 2
    except EngineError as e:
        print(f"swiftavatar {args.command}: engine error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"swiftavatar {args.command}: interrupted; finished work is kept, re-run the same "
              f"command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
