"""Robustness to light and colour: each method on the shifted faces against the same method on
the in-range faces (the real-selfie issue's bar: LPIPS and every attribute's accuracy within 10%
of the in-range set).

The shifted set holds the same people as the in-range set (evalset.SHIFTED_CONDITIONS: light,
white balance, exposure, blur, noise and JPEG beyond the face domain's training ranges), so a
gap is the method's, not the faces'. Relative gaps are taken against the in-range value; an
accuracy that is 0 in range has no relative gap and is compared in absolute terms.
"""
from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from swiftavatar.evaluation.metrics import EvalResult

IN_RANGE, SHIFTED = "faces", "shifted faces"
TOLERANCE = 0.10  # within 10% of the in-range set


def _gap(in_range: float, shifted: float, higher_is_better: bool) -> float:
    """How much worse `shifted` is, as a share of `in_range` (negative: better)."""
    worse = (in_range - shifted) if higher_is_better else (shifted - in_range)
    return worse / in_range if in_range > 0 else worse


def robustness_rows(results: Sequence[EvalResult],
                    tolerance: float = TOLERANCE) -> list[dict[str, Any]]:
    """One row per (engine, method) scored on both sets: LPIPS of each, every attribute's
    accuracy of each, the relative gaps, and whether all of them are within `tolerance`."""
    by_key = {(r.engine, r.method, r.eval_set): r for r in results}
    rows = []
    for (engine, method, eval_set), base in by_key.items():
        if eval_set != IN_RANGE or (engine, method, SHIFTED) not in by_key:
            continue
        shifted = by_key[(engine, method, SHIFTED)]
        gaps = {"lpips": _gap(base.lpips_mean, shifted.lpips_mean, higher_is_better=False)}
        attrs = {}
        for name, acc in base.attribute_accuracy.items():
            other = shifted.attribute_accuracy.get(name)
            if other is None:
                continue
            attrs[name] = {"in_range": acc, "shifted": other}
            gaps[name] = _gap(acc, other, higher_is_better=True)
        rows.append({"engine": engine, "method": method, "n": base.n,
                     "lpips": {"in_range": base.lpips_mean, "shifted": shifted.lpips_mean},
                     "attribute_accuracy": attrs, "gaps": gaps,
                     "worst": max(gaps, key=gaps.get),
                     "within": all(g <= tolerance for g in gaps.values())})
    return rows


def robustness_html(rows: Sequence[Mapping[str, Any]], tolerance: float = TOLERANCE) -> str:
    """The section of the report: per engine and method, each gap in %, worst first."""
    if not rows:
        return ""
    body = []
    for r in rows:
        gaps = sorted(r["gaps"].items(), key=lambda kv: -kv[1])
        cells = ", ".join(f"{html.escape(k)} {100 * g:+.0f}%" for k, g in gaps)
        body.append(f"<tr><td>{html.escape(r['engine'])}</td><td>{html.escape(r['method'])}"
                    f"</td><td>{r['lpips']['in_range']:.4f}</td><td>{r['lpips']['shifted']:.4f}"
                    f"</td><td>{'yes' if r['within'] else 'no'}</td>"
                    f"<td style='text-align:left'>{cells}</td></tr>")
    return (f"<h2>Light and colour: shifted faces against in-range faces</h2><p>How much worse "
            f"each method is on the same people under light, colour, blur and noise beyond "
            f"the training ranges, as a share of its in-range value (LPIPS up, accuracy down "
            f"are positive; {len(rows[0]['gaps']) - 1} attributes). Within: every gap at most "
            f"{100 * tolerance:.0f}%.</p><table><tr><th>engine</th><th>method</th>"
            f"<th>LPIPS in range</th><th>LPIPS shifted</th><th>within</th><th>gaps, worst "
            f"first</th></tr>{''.join(body)}</table>")


__all__ = ["TOLERANCE", "robustness_html", "robustness_rows"]
