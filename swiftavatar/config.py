"""The base of the stage configurations: checks, (de)serialisation, differences, and the field
metadata the command line builds its flags from (`swiftavatar.cli.flags`).

A stage config is a frozen dataclass that derives from `StageConfig` and writes each default
once, in its field. A field the command line sets is declared with `option(...)`, which keeps
its help text, the flag's name when it is not `--field-name`, its choices and metavar; the
`swiftavatar` command then adds one flag per such field, with the field's default. Nothing
here imports Ray, torch or argparse.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

META_KEY = "swiftavatar.cli"  # where `option` keeps its FlagInfo in a field's metadata

C = TypeVar("C", bound="StageConfig")


@dataclass(frozen=True)
class FlagInfo:
    """What the command line knows about one config field.

    help: the flag's help; `{default}` in it is replaced by the default, else " (default X)"
      is appended when the default is a number or a non-empty string and the help does not
      already say "(default".
    flag: the flag's name when it is not `--field-name` (also what error messages call it).
    choices: the values the flag accepts; a mapping {flag value: field value} translates them.
    cli: whether `swiftavatar` adds a flag for the field (False: the command sets the field
      itself, e.g. from several flags, and `flag` only names it in error messages).
    """

    help: str | None = None
    flag: str | None = None
    choices: Sequence[Any] | Mapping[str, Any] | None = None
    metavar: str | None = None
    required: bool = False
    cli: bool = True


def option(default: Any = MISSING, *, default_factory: Any = MISSING, help: str | None = None,
           flag: str | None = None, choices: Sequence[Any] | Mapping[str, Any] | None = None,
           metavar: str | None = None, required: bool = False, cli: bool | None = None) -> Any:
    """A dataclass field with command-line metadata (see FlagInfo). `cli` defaults to whether
    there is a help text."""
    info = FlagInfo(help, flag, choices, metavar, required,
                    help is not None if cli is None else cli)
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={META_KEY: info})


def flag_info(field: dataclasses.Field) -> FlagInfo | None:
    """The field's FlagInfo, or None for a field declared without `option`."""
    return field.metadata.get(META_KEY)


def flag_name(cls: type, name: str) -> str:
    """The flag that sets field `name` of config class `cls`: its `flag` metadata, else
    `--name-with-dashes`."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            info = flag_info(f)
            if info is not None and info.flag:
                return info.flag
    return "--" + name.replace("_", "-")


DEVICES = ("cpu", "cuda")


def need_worker_fields(cfg: Any, need: Callable[[bool, str, str], None]) -> None:
    """The checks every Ray Train stage config shares (for problems(), with `need` from
    StageConfig.checker): its seed, device and what each worker and the data readers reserve."""
    need(0 <= cfg.seed < 2 ** 31, "seed", "must be in 0..2**31-1")
    need(cfg.device in DEVICES, "device", f"must be one of {DEVICES}")
    need((cfg.device == "cuda") == cfg.use_gpu, "device",
         "must be 'cuda' exactly when use_gpu is set")
    need(cfg.cpus_per_worker > 0, "cpus_per_worker", "must be > 0")
    need(not cfg.use_gpu or cfg.gpus_per_worker > 0, "gpus_per_worker",
         "must be > 0 with use_gpu")
    need(cfg.torch_threads >= 0, "torch_threads", "must be >= 0 (0: leave as Ray sets)")
    need(cfg.data_cpus > 0, "data_cpus", "must be > 0")


class StageConfig:
    """Mixin for a stage's frozen config dataclass: `problems()` (to override), `validate()`,
    `to_dict()`/`from_dict()` (nested dataclasses and tuples round-trip through JSON) and
    `differences()`."""

    def problems(self) -> list[tuple[str, str]]:
        """[(field, what is wrong)] for bad values; empty when the config is usable."""
        return []

    def checker(self, out: list[tuple[str, str]]) -> Callable[[bool, str, str], None]:
        """For problems(): `need(ok, field, msg)` appends (field, "msg, got <value>") to `out`
        when `ok` is false."""
        def need(ok: bool, name: str, msg: str) -> None:
            if not ok:
                out.append((name, f"{msg}, got {getattr(self, name)!r}"))
        return need

    def validate(self: C) -> C:
        """Raise ValueError naming every field `problems()` finds; return the config."""
        bad = self.problems()
        if bad:
            raise ValueError("; ".join(f"{name} {msg}" for name, msg in bad))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """Inverse of to_dict (JSON lists become tuples again, nested dicts the nested
        configs); unknown keys are an error."""
        return _build(cls, d)

    def differences(self, other: "StageConfig", fields: Sequence[str] | None = None
                    ) -> list[str]:
        """Names of the fields (of `fields`, default all) whose values differ from `other`'s,
        in declaration order; a nested config's field is named `outer.inner`."""
        names = fields if fields is not None else [f.name for f in dataclasses.fields(self)]
        return [path for name in names
                for path in _differing(name, getattr(self, name), getattr(other, name))]


def _differing(path: str, a: Any, b: Any) -> list[str]:
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return [p for f in dataclasses.fields(a)
                for p in _differing(f"{path}.{f.name}", getattr(a, f.name), getattr(b, f.name))]
    return [] if _as_json(a) == _as_json(b) else [path]


def _as_json(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    return json.dumps(value, sort_keys=True, default=str)


def _build(cls: type, d: Mapping[str, Any]) -> Any:
    if not isinstance(d, Mapping):
        raise ValueError(f"{cls.__name__} needs a JSON object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}")
    return cls(**{k: _convert(hints[k], v) for k, v in d.items()})


def _convert(hint: Any, value: Any) -> Any:
    """`value` (from JSON) as the annotated type: dataclasses from dicts, tuples from lists."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is not type(None) and _fits(arg, value):
                return _convert(arg, value)
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        from_dict = getattr(hint, "from_dict", None)
        return from_dict(value) if from_dict is not None else _build(hint, value)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_convert(a, v) for a, v in zip(args, value))
        return tuple(value)
    return value


def _fits(hint: Any, value: Any) -> bool:
    """Whether a JSON value can stand for the (non-None) type `hint`."""
    target = typing.get_origin(hint) or hint
    if dataclasses.is_dataclass(target):
        return isinstance(value, Mapping)
    if target is tuple:
        return isinstance(value, (list, tuple))
    if target is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if target is Any:
        return True
    return isinstance(target, type) and isinstance(value, target)


__all__ = ["FlagInfo", "META_KEY", "StageConfig", "flag_info", "flag_name", "option"]
