"""Flag handling shared by the subcommands that build a stage config."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from swiftavatar.cli import CliError


def prior_flag(value: str | None) -> dict[str, Any] | str | None:
    """`--prior`: None (uniform), 'suggested' (the engine's own prior) or a JSON file holding
    a Prior dict. Raises CliError naming the flag."""
    if value is None or value == "suggested":
        return value
    path = Path(value)
    if not path.is_file():
        raise CliError(f"--prior: no such file {value}")
    try:
        prior = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CliError(f"--prior: {value} is not valid JSON: {e}") from None
    if not isinstance(prior, dict):
        raise CliError(f"--prior: {value} must hold a JSON object")
    return prior


def check_config(config: Any, flag_of: Mapping[str, str]) -> Any:
    """Raise CliError listing `config.problems()` by flag name (`field` -> `--field`, unless
    `flag_of` names the flag); return the config when it has none."""
    bad = config.problems()
    if bad:
        raise CliError("; ".join(f"{flag_of.get(name, '--' + name.replace('_', '-'))} {msg}"
                                 for name, msg in bad))
    return config


def add_run_flags(p: Any, *, verb: str, dry_run_help: str) -> None:
    """The flags every sharded Ray stage takes: batching, stopping early, resuming, where Ray
    runs, progress and --dry-run. `verb` names what a shard run does ('render', 'produce')."""
    p.add_argument("--render-batch", type=int, default=32,
                   help="vectors per engine.render call (default 32)")
    p.add_argument("--max-shards", type=int, default=None,
                   help=f"{verb} at most this many missing shards, then stop (re-run for more)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset with a different config already in --out")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to use (default $RAY_ADDRESS, else a new local one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help=dry_run_help)
