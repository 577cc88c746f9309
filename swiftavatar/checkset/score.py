"""Per attribute, on how many photos of the check set the avatar shows what a person sees."""
from __future__ import annotations

from typing import Mapping, Sequence

from swiftavatar.checkset.records import CATEGORIES


def score(seen: Sequence[Mapping[str, str | None]],
          avatar: Sequence[Mapping[str, str] | None],
          fields: Sequence[str]) -> list[dict[str, object]]:
    """[{attribute, right, of, percent}] per field in `fields`: `of` counts the photos whose
    record tells the field (not null); a photo with no avatar (no face found) is among them
    and is not right."""
    rows = []
    for field in (f for f in CATEGORIES if f in fields):
        told = [(s[field], a) for s, a in zip(seen, avatar) if s[field] is not None]
        right = sum(a is not None and a.get(field) == s for s, a in told)
        rows.append({"attribute": field, "right": right, "of": len(told),
                     "percent": round(100.0 * right / len(told), 1) if told else None})
    return rows


def format_table(rows: Sequence[Mapping[str, object]]) -> str:
    """The score as a small text table: attribute, right, of, %."""
    lines = [f"{'attribute':<12} {'right':>5} {'of':>4} {'%':>6}"]
    for r in rows:
        pct = "-" if r["percent"] is None else f"{r['percent']:.1f}"
        lines.append(f"{r['attribute']:<12} {r['right']:>5} {r['of']:>4} {pct:>6}")
    return "\n".join(lines)


__all__ = ["format_table", "score"]
