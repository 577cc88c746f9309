"""Flags from a stage config: each field declared with `swiftavatar.config.option` becomes an
argparse flag (type from its annotation, default from the field, help from its metadata), and
the parsed flags become the config again, its `problems()` reported by flag name."""
from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from typing import Any, Callable, Iterator, Mapping, Sequence

from swiftavatar.cli import CliError
from swiftavatar.config import FlagInfo, flag_info, flag_name

RAY_ADDRESS_HELP = "Ray cluster to use (default $RAY_ADDRESS, else a new local one)"
VERBOSE_HELP = ("show Ray's own output (its log lines, the workers' output) on the terminal "
                "too; by default it goes only to OUT/logs/ray.log")


def add_config_flags(parser: argparse.ArgumentParser, cls: type,
                     names: Sequence[str] | None = None, *,
                     defaults: Mapping[str, Any] | None = None,
                     from_base: str | None = None) -> None:
    """Add a flag for each command-line field of config class `cls` (`names`: these, in this
    order; default: all, in declaration order). `defaults` replaces a field's default on the
    command line only; with `from_base` every flag defaults to None, meaning "keep the base
    config's value" (see config_from_args), and its help says "(default: <from_base>)"."""
    defaults = defaults or {}
    for name, field, info, hint in _cli_fields(cls, names):
        flag = flag_name(cls, name)
        if from_base is not None:
            default = None
        elif name in defaults:
            default = defaults[name]
        else:
            default = _field_default(field)
        kw: dict[str, Any] = {"dest": name}
        if isinstance(info.choices, Mapping):
            kw["choices"] = tuple(info.choices)
            default = next((k for k, v in info.choices.items() if v == default), default)
        elif info.choices is not None:
            kw["choices"] = tuple(info.choices)
        typ = _flag_type(hint)
        if typ is bool and info.choices is None:
            kw["action"] = "store_false" if default else "store_true"
        elif typ is dict:
            kw.update(action="append", metavar=info.metavar or "KEY=VALUE")
            default = []
        elif "choices" in kw:
            kw["metavar"] = info.metavar
        else:
            kw.update(type=typ, metavar=info.metavar or flag.lstrip("-").replace("-", "_").upper())
        if info.required or field.default is dataclasses.MISSING and \
                field.default_factory is dataclasses.MISSING and name not in defaults:
            kw["required"] = True
            default = None  # not shown in the help
        else:
            kw["default"] = default
        kw["help"] = _help(info.help or "", default, from_base).replace("%", "%%")
        parser.add_argument(flag, **kw)


def add_ray_flags(parser: argparse.ArgumentParser, cls: type, names: Sequence[str] = (), *,
                  dry_run_help: str) -> None:
    """The flags of a stage that runs on Ray, after its own: the config fields `names`,
    --ray-address, --verbose, the config's `progress` (--no-progress) and --dry-run."""
    add_config_flags(parser, cls, names)
    add_ray_address_flags(parser)
    add_config_flags(parser, cls, ("progress",))
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)


def add_ray_address_flags(parser: argparse.ArgumentParser) -> None:
    """--ray-address and -v/--verbose of every command that starts or joins Ray (the CLI sets
    actors.ray_logs.VERBOSE_ENV for a --verbose command)."""
    parser.add_argument("--ray-address", default=None, help=RAY_ADDRESS_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)


def add_gpu_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """--gpus-per-worker of a training stage: 0 trains on CPU; see gpu_fields."""
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help=help)


def gpu_fields(gpus_per_worker: float) -> dict[str, Any]:
    """The training config fields --gpus-per-worker sets: none for 0 (CPU), else CUDA with
    that many GPUs per worker."""
    if gpus_per_worker < 0:
        raise CliError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if gpus_per_worker == 0:
        return {}
    return {"use_gpu": True, "device": "cuda", "gpus_per_worker": gpus_per_worker}


def config_from_args(cls: type, args: argparse.Namespace, *, base: Any = None,
                     convert: Mapping[str, Callable[[Any], Any]] | None = None,
                     **fixed: Any) -> Any:
    """The config of the parsed flags: every command-line field of `cls` that the parser has,
    passed through `convert[name]` where given, then `fixed` on top. With `base`, flags left
    at None keep the base's values. Raises CliError naming the flags (see check)."""
    convert = convert or {}
    values: dict[str, Any] = {}
    for name, _, info, hint in _cli_fields(cls, None):
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        if base is not None and value is None:
            continue
        if isinstance(info.choices, Mapping):
            value = info.choices[value]
        elif _flag_type(hint) is dict:
            value = key_values(flag_name(cls, name), value, info.metavar or "KEY=VALUE")
        if name in convert:
            value = convert[name](value)
        values[name] = value
    values.update(fixed)
    config = dataclasses.replace(base, **values) if base is not None else cls(**values)
    return check(config)


def check(config: Any, flag_of: Mapping[str, str] | None = None) -> Any:
    """Raise CliError listing `config.problems()` by flag name (the field's `flag` metadata,
    else `--field-name`; `flag_of` overrides); return the config when it has none."""
    bad = config.problems()
    if bad:
        raise CliError(named(type(config), bad, flag_of))
    return config


def named(cls: type, problems: Sequence[tuple[str, str]],
          flag_of: Mapping[str, str] | None = None) -> str:
    """[(field, what is wrong)] of config class `cls` as one line naming each field's flag."""
    flag_of = flag_of or {}
    return "; ".join(f"{flag_of.get(name) or flag_name(cls, name)} {msg}"
                     for name, msg in problems)


def key_values(flag: str, items: Sequence[str], form: str = "KEY=VALUE") -> dict[str, Any]:
    """KEY=VALUE items (`form` names them in errors) as a dict, each VALUE parsed as JSON
    when it parses."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise CliError(f"{flag} takes {form}, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def shown(value: Any) -> str:
    """A default as help texts show it: 5.0 as 5, 0.002 as 0.002."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def _help(text: str, default: Any, from_base: str | None) -> str:
    if from_base is not None:
        return text if "default" in text else f"{text} (default: {from_base})"
    if "{default}" in text:
        return text.replace("{default}", shown(default))
    if "default" in text or default is None or isinstance(default, bool) or default in ("", []):
        return text
    return f"{text} (default {shown(default)})"


def _cli_fields(cls: type, names: Sequence[str] | None
                ) -> Iterator[tuple[str, dataclasses.Field, FlagInfo, Any]]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names if names is not None else fields:
        info = flag_info(fields[name])
        if info is not None and info.cli:
            yield name, fields[name], info, hints[name]
        elif names is not None:
            raise TypeError(f"{cls.__name__}.{name} has no command-line flag")


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _flag_type(hint: Any) -> type:
    """The argparse type of an annotation: X | None -> X; a union with str -> str."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = str if str in args or len(args) != 1 else args[0]
    origin = typing.get_origin(hint) or hint
    return origin if origin in (bool, int, float, str, dict) else str


__all__ = ["RAY_ADDRESS_HELP", "VERBOSE_HELP", "add_config_flags", "add_gpu_flag",
           "add_ray_address_flags", "add_ray_flags", "check",
           "config_from_args", "gpu_fields", "key_values", "named", "shown"]
