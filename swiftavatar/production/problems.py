"""A config value error that names its fields, so a command can name its flags."""
from __future__ import annotations


class ConfigProblems(ValueError):
    """Raised by a config's __post_init__: `problems` is [(field, what is wrong)]; the message
    joins them as 'field what is wrong; ...'."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{name} {msg}" for name, msg in self.problems))


def raise_problems(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ConfigProblems(problems)


__all__ = ["ConfigProblems", "raise_problems"]
