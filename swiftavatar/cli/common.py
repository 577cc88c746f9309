"""Flag handling shared by the subcommands that build a stage config."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
