"""The parser class of the subcommands: flags that need heavy imports (a stage config pulls in
torch or pyarrow) are added only when that subcommand parses or prints its help, so building
the whole command line imports none of them."""
from __future__ import annotations

import argparse
from typing import Any, Callable


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that runs the flag builders given to `defer` before its first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def defer(self, add_flags: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call `add_flags(self)` when this parser is first used."""
        self._deferred.append(add_flags)

    def _complete(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()
