"""The `swiftavatar` command line. Each subcommand lives in its own module in this package and
exposes `register(subparsers)`; the module's handler returns an exit code. A command's flags,
defaults and help come from its config dataclass's fields (`swiftavatar.cli.flags`); those
that need a heavy import are added only when that command runs (`swiftavatar.cli.parser`).

Errors a user can fix (bad flag values, missing files, unknown engines, invalid vectors) are
raised as `CliError` or one of the library's ValueError subclasses and printed as one line
naming the problem, with exit code 2. So are a run directory another driver holds
(`RunLockedError`, naming its pid) and file-system errors on a path the user gave (`--out` is a
file, not writable, the disk is full): one line naming the path and what to do. An engine that
cannot run (`EngineError`: a server that is down, missing assets) is printed the same way with
exit code 1. Anything else is a bug and keeps its traceback.

A command that runs on Ray prints its progress bars, one line per stage and its results; Ray's
own output goes to OUT/logs/ray.log (actors/ray_logs.py), whose last lines a failure prints.
Its -v/--verbose shows Ray's output on the terminal too.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
from typing import Iterator, Sequence

# Subcommand modules, in the order `--help` lists them.
_COMMAND_MODULES = (
    "swiftavatar.cli.engines_cmd",
    "swiftavatar.cli.render_cmd",
    "swiftavatar.cli.demo_cmd",
    "swiftavatar.cli.serve_cmd",
    "swiftavatar.cli.serve_http_cmd",
    "swiftavatar.cli.train_gen_cmd",
    "swiftavatar.cli.produce_cmd",
    "swiftavatar.cli.correspondence_cmd",
    "swiftavatar.cli.train_est_cmd",
    "swiftavatar.cli.train_imitator_cmd",
    "swiftavatar.cli.train_parser_cmd",
    "swiftavatar.cli.train_identity_cmd",
    "swiftavatar.cli.train_translator_cmd",
    "swiftavatar.cli.f2p_cmd",
    "swiftavatar.cli.predict_cmd",
    "swiftavatar.cli.export_onnx_cmd",
    "swiftavatar.cli.check_photos_cmd",
    "swiftavatar.cli.sweep_cmd",
    "swiftavatar.cli.faces_cmd",
)


class CliError(Exception):
    """A problem with what the user asked for; printed without a traceback, exit code 2."""


# errno of a file-system error the user can fix -> what to do about it
_PATH_FIXES = {
    errno.ENOSPC: "the disk is full: free some space, or choose another output directory",
    errno.EDQUOT: "the disk quota is used up: free some space, or choose another output "
                  "directory",
    errno.EACCES: "fix its permissions, or choose another output directory",
    errno.EPERM: "fix its permissions, or choose another output directory",
    errno.EROFS: "the file system is read-only: choose another output directory",
    errno.ENOTDIR: "choose another output directory (or move that file away)",
    errno.EEXIST: "choose another output directory (or move that file away)",
    errno.EISDIR: "choose another output path",
}


def path_error_message(e: OSError) -> str | None:
    """One line naming the path and what to do, for an OSError the user can fix; None for
    others (a bug, or a network error)."""
    fix = _PATH_FIXES.get(e.errno or -1)
    if fix is None:
        return None
    what = (e.strerror or str(e)).strip().splitlines()[0]
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{what}; {fix}"


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


@contextlib.contextmanager
def _verbose(on: bool) -> Iterator[None]:
    """A command's --verbose: Ray's output on the terminal too (actors.ray_logs.VERBOSE_ENV)
    while the command runs."""
    from actors.ray_logs import VERBOSE_ENV

    if not on:
        yield
        return
    saved = os.environ.get(VERBOSE_ENV)
    os.environ[VERBOSE_ENV] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(VERBOSE_ENV, None)
        else:
            os.environ[VERBOSE_ENV] = saved


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from swiftavatar.engines.base import EngineError
    from swiftavatar.engines.registry import UnknownEngineError
    from swiftavatar.engines.schema import InvalidVectorError, SchemaError
    from swiftavatar.rundir import RunLockedError

    try:
        with _verbose(getattr(args, "verbose", False)):
            return int(args.handler(args) or 0)
    except (CliError, UnknownEngineError, InvalidVectorError, SchemaError, FileNotFoundError,
            ValueError, RunLockedError) as e:
        print(f"swiftavatar {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        message = path_error_message(e)
        if message is None:
            raise
        print(f"swiftavatar {args.command}: error: {message}", file=sys.stderr)
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
