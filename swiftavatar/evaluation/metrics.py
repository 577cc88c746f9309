"""Scoring predicted avatar vectors against designer vectors (paper Sec. 4.2, Tables 1 and 3).

The paper's number is LPIPS between the avatar rendered from the predicted vector and the
avatar rendered from the designer's vector (lower is better). Alongside it: per-head accuracy
of the discrete parameters and mean absolute error of the continuous ones in normalised [0, 1]
units. LPIPS comes from `swiftavatar.metrics.build_lpips` (its defaults unless a metric is
passed in); the result names the backbone it used.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from swiftavatar.engines.schema import InvalidVectorError, VectorBatch
from swiftavatar.evaluation.noticed import attribute_accuracy

if TYPE_CHECKING:
    from swiftavatar.engines.base import Engine
    from swiftavatar.metrics import LpipsMetric

DEFAULT_SIZE = 128  # render side for LPIPS (pixels)


@dataclass
class EvalResult:
    """One method's scores on one engine. `to_dict()` is JSON-able (images left out)."""

    method: str
    engine: str
    schema_fingerprint: str
    n: int
    size: int                                  # render side used for LPIPS
    lpips_mean: float
    lpips_std: float
    lpips_per_face: list[float]
    lpips_info: dict[str, Any]                 # net, backbone, comparable_with_published, ...
    discrete_accuracy: dict[str, float]        # per discrete head, fraction equal
    discrete_accuracy_mean: float | None       # over heads not copied; None if none
    continuous_mae: dict[str, float]           # per continuous parameter, normalised units
    continuous_mae_mean: float | None
    attribute_accuracy: dict[str, float] = field(default_factory=dict)  # noticed.ATTRIBUTES
    eval_set: str = "faces"                    # which faces: "faces", "shifted faces", ...
    copied_from_designer: list[str] = field(default_factory=list)
    predicted_images: np.ndarray | None = field(default=None, repr=False)  # (N, H, W, 3) uint8
    designer_images: np.ndarray | None = field(default=None, repr=False)   # (N, H, W, 3) uint8

    @property
    def lpips_sem(self) -> float:
        """Standard error of the mean LPIPS."""
        return self.lpips_std / max(self.n - 1, 1) ** 0.5 if self.n > 1 else 0.0

    @property
    def lpips_backbone(self) -> str:
        return str(self.lpips_info.get("backbone"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("predicted_images")
        d.pop("designer_images")
        d["lpips_backbone"] = self.lpips_backbone
        d["lpips_sem"] = self.lpips_sem
        return d


def check_pair(predicted: VectorBatch, designer: VectorBatch) -> None:
    """Both batches must describe the same faces in the same schema."""
    if predicted.schema.fingerprint != designer.schema.fingerprint:
        raise InvalidVectorError(
            f"predicted vectors use schema {predicted.schema.engine}/{predicted.schema.version} "
            f"({predicted.schema.fingerprint}), designer vectors "
            f"{designer.schema.engine}/{designer.schema.version} ({designer.schema.fingerprint})")
    if len(predicted) != len(designer):
        raise ValueError(f"{len(predicted)} predicted vectors but {len(designer)} designer vectors;"
                         f" give one of each per face, in the same order")
    if len(predicted) == 0:
        raise ValueError("no vectors to evaluate")


def discrete_accuracy(predicted: VectorBatch, designer: VectorBatch) -> dict[str, float]:
    """{discrete parameter: fraction of faces whose predicted option equals the designer's}."""
    check_pair(predicted, designer)
    eq = predicted.discrete == designer.discrete                  # (N, n_d)
    return {p.name: float(eq[:, j].mean()) for j, p in enumerate(predicted.schema.discrete)}


def continuous_mae(predicted: VectorBatch, designer: VectorBatch) -> dict[str, float]:
    """{continuous parameter: mean |predicted - designer|} in [0, 1] units of its range."""
    check_pair(predicted, designer)
    err = np.abs(predicted.normalized_continuous() - designer.normalized_continuous())  # (N, n_c)
    return {p.name: float(err[:, i].mean()) for i, p in enumerate(predicted.schema.continuous)}


def with_params_from(predicted: VectorBatch, designer: VectorBatch,
                     names: Sequence[str]) -> VectorBatch:
    """A copy of `predicted` with parameters `names` taken from `designer`."""
    check_pair(predicted, designer)
    cont, disc = predicted.continuous.copy(), predicted.discrete.copy()
    for name in names:
        predicted.schema.param(name)                              # raises for unknown names
        for i, p in enumerate(predicted.schema.continuous):
            if p.name == name:
                cont[:, i] = designer.continuous[:, i]
        for j, p in enumerate(predicted.schema.discrete):
            if p.name == name:
                disc[:, j] = designer.discrete[:, j]
    return VectorBatch(predicted.schema, cont, disc)


def render_images(engine: "Engine", vectors: VectorBatch, size: int = DEFAULT_SIZE,
                  chunk: int = 64) -> np.ndarray:
    """engine.render in chunks -> (N, size, size, 3) uint8."""
    out = np.empty((len(vectors), size, size, 3), np.uint8)
    for s in range(0, len(vectors), chunk):
        rows = np.arange(s, min(s + chunk, len(vectors)))
        out[rows] = engine.render(vectors.select(rows), size).images
    return out


def lpips_distances(images_a: np.ndarray, images_b: np.ndarray, metric: "LpipsMetric",
                    batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """LPIPS between two (N, H, W, 3) uint8 image sets, pair by pair -> (N,) float64."""
    import torch

    a, b = np.asarray(images_a), np.asarray(images_b)
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"LPIPS needs two equal (N, H, W, 3) uint8 image sets, got "
                         f"{a.shape} {a.dtype} and {b.shape} {b.dtype}")
    out = np.empty(len(a), np.float64)

    def tensor(x: np.ndarray) -> torch.Tensor:  # (n, H, W, 3) uint8 -> (n, 3, H, W) in [-1, 1]
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device).permute(0, 3, 1, 2)
        return t.float() / 127.5 - 1.0

    with torch.no_grad():
        for s in range(0, len(a), batch_size):
            d = metric(tensor(a[s:s + batch_size]), tensor(b[s:s + batch_size]))  # (n,)
            out[s:s + batch_size] = d.double().cpu().numpy()
    return out


class Evaluator:
    """Scores many methods against one set of designer vectors on one engine; the designer
    avatars are rendered once. `lpips=None` builds `build_lpips()` with its defaults."""

    def __init__(self, engine: "Engine", designer: VectorBatch, *, size: int = DEFAULT_SIZE,
                 lpips: "LpipsMetric | None" = None, batch_size: int = 16,
                 copy_from_designer: Sequence[str] = (), device: str = "cpu"):
        if designer.schema.fingerprint != engine.schema.fingerprint:
            raise InvalidVectorError(f"designer vectors are for schema {designer.schema.engine}/"
                                     f"{designer.schema.version}, engine {engine.name!r} has "
                                     f"{engine.schema.version}")
        for name in copy_from_designer:
            engine.schema.param(name)
        if lpips is None:
            from swiftavatar.metrics import build_lpips

            lpips = build_lpips(device=device)
        self.engine, self.designer, self.size = engine, designer, int(size)
        self.lpips, self.batch_size, self.device = lpips, int(batch_size), device
        self.copied = list(copy_from_designer)
        self.designer_images = render_images(engine, designer, self.size)  # (N, S, S, 3)

    def evaluate(self, predicted: VectorBatch, method: str = "",
                 keep_images: bool = True, eval_set: str = "faces") -> EvalResult:
        check_pair(predicted, self.designer)
        shown = with_params_from(predicted, self.designer, self.copied)
        pred_images = render_images(self.engine, shown, self.size)
        d = lpips_distances(pred_images, self.designer_images, self.lpips, self.batch_size,
                            self.device)
        acc = discrete_accuracy(predicted, self.designer)
        mae = continuous_mae(predicted, self.designer)
        style = set(self.engine.schema.style_names) | set(self.copied)
        acc_kept = [v for k, v in acc.items() if k not in style]
        mae_kept = [v for k, v in mae.items() if k not in style]
        return EvalResult(
            method=method, engine=self.engine.name,
            schema_fingerprint=self.engine.schema.fingerprint, n=len(predicted), size=self.size,
            lpips_mean=float(d.mean()), lpips_std=float(d.std()),
            lpips_per_face=[float(x) for x in d],
            lpips_info=dict(getattr(self.lpips, "info", {"backbone": "unknown"})),
            discrete_accuracy=acc,
            discrete_accuracy_mean=float(np.mean(acc_kept)) if acc_kept else None,
            continuous_mae=mae,
            continuous_mae_mean=float(np.mean(mae_kept)) if mae_kept else None,
            attribute_accuracy=attribute_accuracy(predicted, self.designer),
            eval_set=eval_set, copied_from_designer=list(self.copied),
            predicted_images=pred_images if keep_images else None,
            designer_images=self.designer_images if keep_images else None)


def evaluate_vectors(predicted: VectorBatch, designer: VectorBatch, engine: "Engine", *,
                     method: str = "", size: int = DEFAULT_SIZE,
                     lpips: "LpipsMetric | None" = None, batch_size: int = 16,
                     copy_from_designer: Sequence[str] = (), keep_images: bool = True,
                     device: str = "cpu") -> EvalResult:
    """Score one method: render both vector sets at `size`, LPIPS per face, accuracy, MAE.

    copy_from_designer: parameters (e.g. a background) taken from the designer vector before
    rendering, so LPIPS ignores them; the accuracy and MAE means leave them out too."""
    ev = Evaluator(engine, designer, size=size, lpips=lpips, batch_size=batch_size,
                   copy_from_designer=copy_from_designer, device=device)
    return ev.evaluate(predicted, method, keep_images)


__all__ = ["DEFAULT_SIZE", "EvalResult", "Evaluator", "check_pair", "continuous_mae",
           "discrete_accuracy", "evaluate_vectors", "lpips_distances", "render_images",
           "with_params_from"]
