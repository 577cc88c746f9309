"""A sweep trial's validation: on rank 0 after every epoch, the validation LPIPS of the
evaluation (the avatar rendered from the predicted vector against the designer's avatar, on
held-out validation faces).

A trial trains through the estimator's own Ray Train loop
(swiftavatar.estimator.loop.train_loop_per_worker); `TrialValidation` is the validation hook it
passes there. The score is added to the epoch's metrics, so it is in the checkpoint and in
rank 0's report, which `TuneReportCallback` forwards to Tune (rank 0's metrics): ASHA sees
`val_lpips` after every epoch and may stop the trial. `tune.results` scores the reference rows
with the same `DesignerValidation`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from swiftavatar.engines.schema import EngineSchema


class DesignerValidation:
    """Validation faces, the designer's avatars for them (rendered once) and the LPIPS metric.
    `validation`: tune.spec.ValidationSpec as a dict; `engine`: the engine spec to render with."""

    def __init__(self, validation: Mapping[str, Any], schema: EngineSchema, engine: str,
                 device: str = "cpu") -> None:
        from swiftavatar.engines.registry import get_engine
        from swiftavatar.evaluation import Evaluator, design
        from swiftavatar.metrics import build_lpips
        from tune.spec import ValidationSpec

        spec = ValidationSpec(**validation)
        faces = spec.eval_set().faces()
        self.images = faces.images                                   # (N, S, S, 3) uint8
        assert self.images.shape == (spec.count, spec.size, spec.size, 3), self.images.shape
        self.engine = get_engine(engine)
        if self.engine.schema.fingerprint != schema.fingerprint:
            raise ValueError(f"engine {engine!r} has schema {self.engine.schema.fingerprint}, "
                             f"the training data {schema.fingerprint}")
        self.schema = schema
        lpips = build_lpips(spec.lpips_net, spec.lpips_backbone,
                            allow_random=spec.lpips_allow_random, device=device)
        self.evaluator = Evaluator(self.engine, design(faces.attributes, schema),
                                   size=spec.size, lpips=lpips, device=device)
        self.device = device

    def score(self, model: nn.Module) -> dict[str, float]:
        from swiftavatar.estimator.predict import predict_images

        pred = predict_images(model, self.schema, self.images, self.device)
        return self.score_vectors(pred)

    def score_vectors(self, vectors, name: str = "trial") -> dict[str, float]:
        """Metrics of one vector per validation face: val_lpips, the designer accuracy and
        MAE, and val_attr_<attribute> for each attribute a person notices first."""
        res = self.evaluator.evaluate(vectors, name, keep_images=False)
        out = {"val_lpips": res.lpips_mean, "val_lpips_std": res.lpips_std}
        if res.discrete_accuracy_mean is not None:
            out["val_designer_acc"] = res.discrete_accuracy_mean
        if res.continuous_mae_mean is not None:
            out["val_designer_mae"] = res.continuous_mae_mean
        for attr, acc in (res.attribute_accuracy or {}).items():
            out[attribute_metric(attr)] = acc
        return out

    def reference_scores(self) -> dict[str, dict[str, float]]:
        """The evaluation's reference rows on these faces: {name: score_vectors metrics} for
        random prior vectors and the designer's constant mode."""
        from swiftavatar.evaluation.references import reference_vectors

        return {name: self.score_vectors(v, name) for name, v in
                reference_vectors(self.engine, self.evaluator.designer).items()}

    def close(self) -> None:
        self.engine.close()


def attribute_metric(attribute: str) -> str:
    """The reported metric of a noticed attribute: 'skin tone' -> 'val_attr_skin_tone'."""
    return "val_attr_" + attribute.replace(" ", "_")


@dataclass(frozen=True)
class TrialValidation:
    """The validation hook of a trial's estimator loop (swiftavatar.estimator.loop's
    ValidationHook), sent to the workers in the loop config. Rank 0 calls it once before
    training: it records the worker group's placement group in the run directory (for
    tune.reaper) and returns the designer validation's `score`. `validation`:
    tune.spec.ValidationSpec as a dict; `engine`: the engine spec to render with."""

    validation: Mapping[str, Any]
    engine: str

    def __call__(self, cfg: Any, schema: EngineSchema,
                 device: torch.device) -> Callable[[nn.Module], dict[str, float]]:
        from tune.reaper import record_placement_group

        record_placement_group(cfg.out)
        return DesignerValidation(self.validation, schema, self.engine, str(device)).score


__all__ = ["DesignerValidation", "TrialValidation", "attribute_metric"]
