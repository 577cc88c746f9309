"""Finding engines by name: the built-ins and third-party ones registered under the
`swiftavatar.engines` entry-point group (value: an `Engine` subclass or a factory)."""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from swiftavatar.engines.base import Engine

ENTRY_POINT_GROUP = "swiftavatar.engines"

# Built-ins resolve without package metadata (a source checkout works too).
_BUILTINS: dict[str, str] = {
    "toon": "swiftavatar.engines.toon:ToonEngine",
    "avataaars": "swiftavatar.engines.avataaars:AvataaarsEngine",
    "grpc": "swiftavatar.engines.grpc_engine:GrpcEngine",
}


class UnknownEngineError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


class UntrustedEngineError(UnknownEngineError):
    """A file (checkpoint, dataset card, sweep state) names an engine by import target or
    remote address: only the command line may pick code to import or a server to contact."""


def _load(target: str) -> Callable[..., Engine]:
    """'module:attr' or 'module:Class.attr' (entry-point value syntax; extras are ignored)."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in attr.split("[", 1)[0].strip().split("."):
        obj = getattr(obj, part)
    return obj


def available_engines() -> dict[str, str]:
    """{name: 'module:attr'} for built-ins and entry points (entry points may not shadow)."""
    found = dict(_BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class EngineSpec:
    """A picklable recipe for an engine: what Ray actors receive and rebuild in `__init__`.
    `grpc://HOST:PORT` is shorthand for name 'grpc' with option address=HOST:PORT."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, options: dict[str, Any] | None = None) -> "EngineSpec":
        opts = dict(options or {})
        if text.startswith("grpc://"):
            opts.setdefault("address", text[len("grpc://"):])
            return cls("grpc", opts)
        return cls(text, opts)

    def build(self) -> Engine:
        return get_engine(self.name, **self.options)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.options.items()))))


def check_engine_spec(text: str) -> None:
    """Raise UnknownEngineError unless `text` names an engine: a registered name, an
    importable 'module:attr' or `grpc://HOST:PORT`. Builds nothing and contacts no server."""
    if text.startswith("grpc://"):
        host, _, port = text[len("grpc://"):].rpartition(":")
        if not host or not port.isdigit():
            raise UnknownEngineError(f"engine {text!r}: a gRPC engine is grpc://HOST:PORT, e.g. "
                                     f"grpc://127.0.0.1:50051")
        return
    if ":" in text:
        _import_target(text)
        return
    if text not in available_engines():
        raise UnknownEngineError(_unknown(text))


def _import_target(target: str) -> Callable[..., Engine]:
    try:
        return _load(target)
    except (ImportError, AttributeError, ValueError) as e:
        raise UnknownEngineError(f"cannot import engine target {target!r} (expected "
                                 f"'module:attr'): {e}") from None


def _unknown(name: str) -> str:
    return (f"unknown engine {name!r}; available: {', '.join(available_engines())} "
            f"(third-party engines register under the entry-point group "
            f"{ENTRY_POINT_GROUP!r}; an importable class can also be named as 'module:attr')")


def get_engine(name: str, **options: Any) -> Engine:
    """Build an engine from a registered name, `grpc://HOST:PORT`, or a 'module:attr' target
    (an importable Engine subclass or factory, used as is without registration)."""
    if name.startswith("grpc://"):
        spec = EngineSpec.parse(name, options)
        name, options = spec.name, spec.options
    if ":" in name:
        factory = _import_target(name)
    else:
        engines = available_engines()
        if name not in engines:
            raise UnknownEngineError(_unknown(name))
        factory = _load(engines[name])
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as e:  # only wrong options; a TypeError raised inside keeps its traceback
        raise ValueError(f"engine {name!r} does not take options {sorted(options)}: {e}") from None
    except ValueError:  # no signature to check (some C callables): let the call decide
        pass
    return factory(**options)


def check_registered_engine(name: str, source: str, hint: str = "") -> None:
    """Refuse an engine name read from a file unless it names a registered engine (a built-in
    or an entry point). `module:attr` targets and `grpc://` addresses would let the file pick
    code to import or a server to contact, so they come only from `--engine` (or from a file
    the user names on the command line, e.g. a sweep file's `data.engine`). `source` says which
    file named it; `hint` how to pass the engine instead (default: `--engine NAME`). Imports
    and contacts nothing."""
    if name.startswith("grpc://") or ":" in name:
        raise UntrustedEngineError(
            f"{source} names the engine {name!r}, which is not a registered engine: a file may "
            f"name only a registered engine ({', '.join(available_engines())}); an import target "
            f"or grpc:// address is taken only from the command line, so "
            f"{hint or f'pass --engine {name}'} if you trust it")
    if name not in available_engines():
        raise UnknownEngineError(_unknown(name))


def get_registered_engine(name: str, source: str, **options: Any) -> Engine:
    """`get_engine` for a name read from a file: registered engines only (see
    `check_registered_engine`)."""
    check_registered_engine(name, source)
    return get_engine(name, **options)
