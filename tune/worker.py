"""A sweep trial's Ray Train worker: the estimator's own training (EstimatorTrainer, run_epochs)
plus, on rank 0 after every epoch, the validation LPIPS of the evaluation (the avatar rendered
from the predicted vector against the designer's avatar, on held-out validation faces).

The score is added to the epoch's metrics inside `evaluate`, so it is in the checkpoint and in
rank 0's `ray.train.report`, which `TuneReportCallback` forwards to Tune (rank 0's metrics):
ASHA sees `val_lpips` after every epoch and may stop the trial.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from swiftavatar.engines.schema import EngineSchema
from swiftavatar.estimator.loop import EstimatorTrainer, run_epochs
from swiftavatar.train_worker import resume_payload, worker_context


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


class SweepTrainer(EstimatorTrainer):
    """EstimatorTrainer whose per-epoch evaluation adds the designer validation (rank 0)."""

    validation: DesignerValidation | None = None

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Mapping[str, Any]]) -> dict[str, float]:
        metrics = super().evaluate(batches)       # held-out rows, if any (a collective)
        if self.validation is not None:
            metrics.update(self.validation.score(self.model))
        return metrics


def sweep_loop_per_worker(config: dict) -> None:
    """Ray Train worker function. config: {"run": EstimatorTrainConfig.to_dict(),
    "engine_schema": JSON, "engine": engine spec, "validation": ValidationSpec dict,
    "data": a plain description of the data}."""
    import ray.train
    import ray.train.torch

    from swiftavatar.estimator.checkpoint import checkpoint_dir_name, read_checkpoint
    from swiftavatar.estimator.config import EstimatorTrainConfig

    cfg = EstimatorTrainConfig.from_dict(config["run"]).validate()
    schema = EngineSchema.from_json(config["engine_schema"])
    rank, world, device = worker_context(cfg.torch_threads, cfg.use_gpu)
    resume = resume_payload(read_checkpoint, "epoch")   # this trial's run, restarted/restored
    trainer = SweepTrainer(cfg, schema, device, rank=rank, world_size=world, resume=resume,
                           wrap=lambda m: ray.train.torch.prepare_model(m, move_to_device=device))
    if resume is not None and trainer.epoch >= cfg.epochs:
        # a restored trial whose training had finished: tell Tune its last result again
        ray.train.report(dict(resume["metrics"]))
        return
    if rank == 0:
        from tune.reaper import record_placement_group

        record_placement_group(cfg.out)
        trainer.validation = DesignerValidation(config["validation"], schema, config["engine"],
                                                str(device))

    def report(metrics: dict[str, Any], checkpoint_dir: str | None, epoch: int) -> None:
        finite = {k: v for k, v in metrics.items() if not isinstance(v, float) or np.isfinite(v)}
        ray.train.report(finite, checkpoint=(ray.train.Checkpoint.from_directory(checkpoint_dir)
                                             if checkpoint_dir else None),
                         checkpoint_dir_name=checkpoint_dir_name(epoch))

    train = ray.train.get_dataset_shard("train")
    shuffle = max(4 * cfg.worker_batch, 256)
    run_epochs(trainer,
               lambda epoch: train.iter_torch_batches(batch_size=cfg.worker_batch, drop_last=True,
                                                      local_shuffle_buffer_size=shuffle),
               lambda: (), report=report, data_info=config.get("data"))


__all__ = ["DesignerValidation", "SweepTrainer", "attribute_metric", "sweep_loop_per_worker"]
