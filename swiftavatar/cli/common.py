"""Flag handling shared by the subcommands that build a stage config."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import RAY_ADDRESS_HELP
from swiftavatar.cli.flags import check as check_config  # noqa: F401  (produce's flags)


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


def add_run_flags(p: Any, *, verb: str, dry_run_help: str) -> None:
    """The run flags of `produce` (render's come from RenderConfig, see flags.add_ray_flags):
    batching, stopping early, resuming, where Ray runs, progress and --dry-run."""
    p.add_argument("--render-batch", type=int, default=32,
                   help="vectors per engine.render call (default 32)")
    p.add_argument("--max-shards", type=int, default=None,
                   help=f"{verb} at most this many missing shards, then stop (re-run for more)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset with a different config already in --out")
    p.add_argument("--ray-address", default=None, help=RAY_ADDRESS_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help=dry_run_help)
