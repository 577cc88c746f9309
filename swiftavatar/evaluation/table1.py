"""The paper's Table 1: LPIPS to the designer's avatars and the time per face of Baseline, F2P,
F2P v2 and SwiftAvatar (the + semantic augmentation estimator), per engine, from the
evaluation's results and the batch-1 timings (actors.f2p_baselines.time_per_face)."""
from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from swiftavatar.evaluation.metrics import EvalResult

# Table 1 of the paper (LPIPS to designer avatars on its engines; speed on a V100), for
# context only: other engines, other faces, another LPIPS trunk.
PAPER_TABLE1 = {"Baseline": (0.5033, 0.3962, "~10^2 Hz"), "F2P": (0.3562, 0.3040, "~1 Hz"),
                "F2P v2": (0.4466, 0.2825, "~10^2 Hz"), "SwiftAvatar": (0.3110, 0.2405,
                                                                       "~10^2 Hz")}
# Table 1's rows: (its name, the evaluation's method)
ROWS = (("Baseline", "Baseline"), ("F2P", "F2P"), ("F2P v2", "F2P v2"),
        ("SwiftAvatar", "+ semantic augmentation"))


def table1_rows(results: Sequence[EvalResult],
                timing: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per engine and method, in ROWS order, for engines with all four methods scored
    on the held-out faces: {engine, method, lpips, lpips_sem, n, ms_per_face, hz,
    timed_faces, torch_threads}. `timing` is {engine: {method: time_per_face entry}}, keyed
    by the evaluation's method names."""
    scored = {(r.engine, r.method): r for r in results if r.eval_set == "faces"}
    rows = []
    for engine in dict.fromkeys(r.engine for r in results):
        if not all((engine, m) in scored for _, m in ROWS):
            continue
        for name, method in ROWS:
            r = scored[(engine, method)]
            t = (timing.get(engine) or {}).get(method) or {}
            ms = t.get("ms_median")
            rows.append({"engine": engine, "method": name, "lpips": r.lpips_mean,
                         "lpips_sem": r.lpips_sem, "n": r.n, "ms_per_face": ms,
                         "hz": round(1e3 / ms, 1) if ms else None,
                         "timed_faces": t.get("faces"), "torch_threads": t.get("torch_threads")})
    return rows


def table1_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: a column pair (LPIPS, ms per face) per engine."""
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    if not engines:
        return ""
    cell = {(r["engine"], r["method"]): r for r in rows}
    head = "| method | " + " | ".join(f"{e} LPIPS (± s.e.) | {e} ms/face" for e in engines)
    out = [head + " |", "|---|" + "---:|---:|" * len(engines)]
    for name, _ in ROWS:
        cells = []
        for e in engines:
            r = cell[(e, name)]
            ms = "n/a" if r["ms_per_face"] is None else f"{r['ms_per_face']:.1f}"
            cells += [f"{r['lpips']:.4f} ± {r['lpips_sem']:.4f}", ms]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def table1_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """The report's Table 1 section (empty without rows), with the paper's for context."""
    if not rows:
        return ""
    body = []
    for r in rows:
        ms = "n/a" if r["ms_per_face"] is None else f"{r['ms_per_face']:.1f}"
        hz = "n/a" if r["hz"] is None else f"{r['hz']:.1f}"
        body.append(f"<tr><td>{html.escape(r['method'])}</td><td>{html.escape(r['engine'])}"
                    f"</td><td>{r['lpips']:.4f} &plusmn; {r['lpips_sem']:.4f}</td><td>{ms}</td>"
                    f"<td>{hz}</td><td>{r['n']}</td></tr>")
    t = next((r for r in rows if r.get("timed_faces")), {})
    paper = "".join(f"<tr><td>{html.escape(m)}</td><td>{a:.4f}</td><td>{b:.4f}</td>"
                    f"<td>{html.escape(s)}</td></tr>" for m, (a, b, s) in PAPER_TABLE1.items())
    return ("<h2>Table 1: comparison with F2P and F2P v2</h2><p>LPIPS to the designer's "
            "avatars on the held-out faces (as in the ablation below) and the time per face "
            f"at batch 1 in this process (median over {t.get('timed_faces', '?')} faces, "
            f"{t.get('torch_threads', '?')} torch threads, the face already framed). "
            "SwiftAvatar is the + semantic augmentation estimator.</p><table><tr><th>method"
            "</th><th>engine</th><th>LPIPS &darr; (&plusmn; s.e.)</th><th>ms / face &darr;"
            "</th><th>faces / s &uarr;</th><th>n</th></tr>" + "".join(body) + "</table>"
            "<p>For context, the paper's Table 1 (LPIPS on its TikTok and Alter engines and "
            "116 FFHQ photos, speed on a V100; not comparable with the numbers above):</p>"
            "<table><tr><th>method</th><th>TikTok</th><th>Alter</th><th>speed</th></tr>"
            f"{paper}</table>")


__all__ = ["PAPER_TABLE1", "ROWS", "table1_html", "table1_rows", "table1_text"]
