"""A finished (or interrupted) sweep's outputs, from its `ResultGrid`: the results table
(results.md, results.csv), the best trial's config (best_config.json) and the
LPIPS-by-parameter plot (lpips_by_param.png), all in the experiment directory.

The best trial has the lowest `val_lpips` at its last reported epoch (the model its estimator
run ends with); trials ASHA stopped early take part with the epoch they reached.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping

from swiftavatar import atomic
from swiftavatar.evaluation.noticed import ATTRIBUTES
from tune.space import flatten
from tune.spec import METRIC, SweepSpec
from tune.trial import ESTIMATORS_DIR, TRIAL_FILE
from tune.validation import attribute_metric

TABLE_MD, TABLE_CSV, BEST_FILE, PLOT_FILE = ("results.md", "results.csv", "best_config.json",
                                             "lpips_by_param.png")


def _history(result: Any) -> dict[int, float]:
    """{epoch: val_lpips} of one trial (a restored trial may report an epoch twice)."""
    df = result.metrics_dataframe
    if df is None or METRIC not in df or "epoch" not in df:
        return {}
    return {int(e): float(v) for e, v in zip(df["epoch"], df[METRIC])
            if v is not None and not math.isnan(float(v))}


def trial_rows(spec: SweepSpec, grid: Any, exp_dir: Path) -> list[dict[str, Any]]:
    """One dict per trial: trial_id, values (dotted names), stages, reused, epochs,
    val_lpips (last), best_val_lpips, best_epoch, history, status, error, best (bool)."""
    rows = []
    names = [p.name for p in spec.params]
    for result in grid:
        tid = Path(result.path).name
        values = flatten(result.config or {})
        info_path = exp_dir / ESTIMATORS_DIR / tid / TRIAL_FILE
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        hist = _history(result)
        last = max(hist) if hist else 0
        if result.error is not None:
            status = "error"
        elif last >= spec.budget.epochs:
            status = "complete"
        else:
            status = f"stopped at epoch {last}" if hist else "not run"
        rows.append({
            "trial_id": tid, "values": {n: values.get(n) for n in names},
            "stages": info.get("stages", []), "reused": info.get("reused", []),
            "epochs": last, "val_lpips": hist[last] if hist else None,
            "best_val_lpips": min(hist.values()) if hist else None,
            "best_epoch": min(hist, key=hist.get) if hist else None,
            "history": hist, "status": status,
            "error": str(result.error).strip().splitlines()[0] if result.error else None,
            "wall_s": (result.metrics or {}).get("time_total_s"), "best": False,
            "attributes": {a: (result.metrics or {}).get(attribute_metric(a))
                           for a in ATTRIBUTES}})
    scored = [r for r in rows if r["val_lpips"] is not None]
    if scored:
        min(scored, key=lambda r: r["val_lpips"])["best"] = True
    rows.sort(key=lambda r: (r["val_lpips"] is None, r["val_lpips"] or 0.0))
    return rows


def _f(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown_table(spec: SweepSpec, rows: list[dict[str, Any]],
                   references: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """Trials best first, then the evaluation's reference rows (random prior vectors, the
    designer's constant mode) on the same validation faces; attribute accuracy at each
    trial's last reported epoch."""
    names = [p.name for p in spec.params]
    head = ["trial", *names, "stages (reused)", "epochs", "val LPIPS (last)",
            "val LPIPS (best, epoch)", *ATTRIBUTES, "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        reused = f" ({', '.join(r['reused'])})" if r["reused"] else ""
        best = (f"{r['best_val_lpips']:.4f} ({r['best_epoch']})"
                if r["best_val_lpips"] is not None else "-")
        mark = " **best**" if r["best"] else ""
        attrs = r.get("attributes") or {}
        lines.append("| " + " | ".join([
            r["trial_id"] + mark, *[_f(r["values"][n], 4) for n in names],
            ", ".join(r["stages"]) + reused, str(r["epochs"]), _f(r["val_lpips"]), best,
            *[_f(attrs.get(a), 2) for a in ATTRIBUTES],
            r["status"] + (f": {r['error']}" if r["error"] else "")]) + " |")
    for name, m in (references or {}).items():
        lines.append("| " + " | ".join([
            f"*{name}*", *["" for _ in names], "", "", _f(m.get("val_lpips")), "",
            *[_f(m.get(attribute_metric(a)), 2) for a in ATTRIBUTES], "reference"]) + " |")
    return "\n".join(lines) + "\n"


def reference_scores(spec: SweepSpec) -> dict[str, dict[str, float]]:
    """The reference rows on the sweep's validation faces, with the engine of its pairs."""
    from swiftavatar.estimator.data import open_source
    from tune.trial import engine_spec_of
    from tune.validation import DesignerValidation

    schema = open_source(spec.pairs).schema
    val = DesignerValidation(dataclasses.asdict(spec.validation), schema,
                             engine_spec_of(spec.pairs, schema.engine, spec.engine))
    try:
        return val.reference_scores()
    finally:
        val.close()


def csv_table(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    names = [p.name for p in spec.params]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial_id", *names, "stages", "epochs", "val_lpips", "best_val_lpips",
                "best_epoch", "status", "best"])
    for r in rows:
        w.writerow([r["trial_id"], *[r["values"][n] for n in names], "+".join(r["stages"]),
                    r["epochs"], r["val_lpips"], r["best_val_lpips"], r["best_epoch"],
                    r["status"], int(r["best"])])
    return buf.getvalue()


def _atomic(path: Path, data: str | bytes) -> None:
    atomic.write_bytes(path, data if isinstance(data, bytes) else data.encode())


def write_results(spec: SweepSpec, grid: Any, exp_dir: str | Path) -> dict[str, Any]:
    """Write the table, best config and plot; returns {"rows", "best", "table", "paths"}."""
    from swiftavatar import shards
    from tune.plot import lpips_by_param

    exp_dir = Path(exp_dir)
    rows = trial_rows(spec, grid, exp_dir)
    references = reference_scores(spec)
    v = spec.validation
    table = (f"Sweep `{spec.name}`: {len(rows)} trials, validation LPIPS (the evaluation's "
             f"metric: rendered prediction vs designer avatar) on {v.count} validation faces "
             f"(seed {v.seed}) at {v.size} px, lower is better; {spec.budget.epochs} epochs at "
             f"most, scheduler {spec.scheduler.type}; attribute accuracy at the last epoch; "
             f"the reference rows are random prior vectors and the designer's constant "
             f"mode.\n\n" + markdown_table(spec, rows, references))
    _atomic(exp_dir / TABLE_MD, table)
    _atomic(exp_dir / TABLE_CSV, csv_table(spec, rows))
    paths = {"table": str(exp_dir / TABLE_MD), "csv": str(exp_dir / TABLE_CSV)}
    best = next((r for r in rows if r["best"]), None)
    if best is not None:
        run = exp_dir / ESTIMATORS_DIR / best["trial_id"]
        cfg_file = run / "config.json"
        doc = {"sweep": spec.name, "metric": METRIC, "mode": "min",
               "trial_id": best["trial_id"], "values": best["values"],
               "val_lpips": best["val_lpips"], "epoch": best["epochs"],
               "stages": best["stages"], "estimator_run": str(run),
               "estimator_config": (json.loads(cfg_file.read_text()) if cfg_file.is_file()
                                    else None),
               "validation": {"seed": v.seed, "count": v.count, "size": v.size}}
        _atomic(exp_dir / BEST_FILE, json.dumps(doc, indent=2, sort_keys=True) + "\n")
        image = lpips_by_param(rows, spec.params,
                               f"{spec.name}: validation LPIPS (y, last epoch) by parameter")
        _atomic(exp_dir / PLOT_FILE, shards.encode_png(image))
        paths.update(best=str(exp_dir / BEST_FILE), plot=str(exp_dir / PLOT_FILE))
    return {"rows": rows, "best": best, "table": table, "paths": paths,
            "references": references}


__all__ = ["BEST_FILE", "PLOT_FILE", "TABLE_CSV", "TABLE_MD", "csv_table", "markdown_table",
           "reference_scores", "trial_rows", "write_results"]
