"""Evaluation against designer ground truth (paper Sec. 4, Tables 1 and 3, Figure 6).

- `EvalSet`: held-out procedural faces (a seed no training stage uses) and, per engine, the
  designer's avatar vectors (`designer_for(engine)(attrs, schema) -> VectorBatch`).
- `evaluate_vectors` / `Evaluator`: LPIPS between rendered predicted and designer avatars,
  per-head discrete accuracy, continuous MAE -> `EvalResult`.
- `write_report`, `figure6_sheet`: results JSON, HTML ablation table, Figure-6 contact sheet.

Names resolve on first use, so importing this package imports neither torch nor an engine.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "designer": ("BACKGROUND_KIND_RGB", "Designer", "NoDesignerError", "available_designers",
                 "design", "designer_for", "has_designer", "nearest_colour",
                 "register_designer"),
    "evalset": ("EVAL_SEED", "EvalData", "EvalSet", "PAPER_COUNT", "SHIFTED_CONDITIONS"),
    "correspondence": ("CorrespondenceReport", "correspondence", "generator_pairs"),
    "noticed": ("ATTRIBUTES", "Attribute", "attribute_accuracy", "register_attributes"),
    "references": ("CONSTANT", "RANDOM", "REFERENCES", "reference_vectors"),
    "metrics": ("DEFAULT_SIZE", "EvalResult", "Evaluator", "continuous_mae", "discrete_accuracy",
                "evaluate_vectors", "lpips_distances", "render_images", "with_params_from"),
    "report": ("PAPER_TABLE3", "ReportPaths", "figure6_sheet", "table_rows", "write_report",
               "write_results_json"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'swiftavatar.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"swiftavatar.evaluation.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
