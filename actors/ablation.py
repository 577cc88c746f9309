"""The paper's Table 3 for one engine: train the Baseline, "+ domain adaptation" and
"+ semantic augmentation" estimators on Ray Train, then score each against the designer on
held-out faces of the built-in realistic domain (and the Baseline on held-out engine renders,
to show that the domain gap is real).

* Baseline: the estimator trained on engine renders (the rendering stage's dataset).
* + domain adaptation: trained on the realistic faces G_real draws from the inverted latents
  (paired data, aug_index 0 only).
* + semantic augmentation: the same plus the augmented rows (the whole paired dataset).

Each method trains for about the same number of images (`images_seen`), so a method with fewer
rows runs more epochs, up to the estimator config's `epochs` (the paper trains every method for
the same 100 epochs). Runs live in OUT/<method slug>/ and resume like any estimator run.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from swiftavatar.estimator.config import EstimatorTrainConfig

BASELINE = "Baseline"
DOMAIN_ADAPTATION = "+ domain adaptation"
AUGMENTATION = "+ semantic augmentation"
BASELINE_ON_RENDERS = "Baseline on engine renders"
METHODS = (BASELINE, DOMAIN_ADAPTATION, AUGMENTATION)
SLUGS = {BASELINE: "baseline", DOMAIN_ADAPTATION: "domain_adaptation",
         AUGMENTATION: "semantic_augmentation"}
RENDER_EVAL_SEED = 777_001      # vectors of the held-out engine renders (not a training seed)


@dataclass(frozen=True)
class AblationConfig:
    engine: str
    pairs: str                   # paired dataset (`produce`)
    renders: str                 # rendered dataset (`render`) for the Baseline
    out: str                     # OUT/<slug>/ per method
    images_seen: int = 30_000    # training images per method (epochs follow from the rows)
    estimator: EstimatorTrainConfig = field(default_factory=EstimatorTrainConfig.embedded)
    prior: str | None = "suggested"  # prior of the held-out engine renders

    def method_config(self, method: str, rows: int) -> EstimatorTrainConfig:
        """The run of one method, `rows` being its training rows."""
        # epochs to see about images_seen images, at most the estimator config's epochs
        # (each epoch has a fixed cost: the Ray Data pipeline starts, validation runs)
        epochs = min(self.estimator.epochs, max(1, math.ceil(self.images_seen / max(rows, 1))))
        data, column, augmented = {
            BASELINE: (self.renders, "image_png", False),
            DOMAIN_ADAPTATION: (self.pairs, "realistic_png", False),
            AUGMENTATION: (self.pairs, "realistic_png", True),
        }[method]
        workers = self.estimator.num_workers
        batch = self.estimator.batch
        if rows < batch:                 # a small split trains on smaller batches
            batch = max(workers, rows // workers * workers)
        return replace(self.estimator, data=data, out=str(Path(self.out) / SLUGS[method]),
                       image_column=column, augmented=augmented, epochs=epochs, batch=batch,
                       lr_step_epochs=max(1, math.ceil(epochs / 3)))


def train_methods(cfg: AblationConfig) -> dict[str, dict[str, Any]]:
    """Train (or resume) the three estimators on Ray Train; {method: training summary}."""
    from actors.train_estimator import run_estimator_training
    from swiftavatar.estimator.data import RowFilter, count_rows, open_source

    out: dict[str, dict[str, Any]] = {}
    for i, method in enumerate(METHODS, 1):
        probe = cfg.method_config(method, 1)
        source = open_source(probe.data)
        rows = count_rows(source, RowFilter("train", probe.augmented, probe.val_fraction))
        run = cfg.method_config(method, rows)
        print(f"[estimator {cfg.engine} {i}/{len(METHODS)}] {method}: {rows} rows x "
              f"{run.epochs} epochs -> {run.out}", file=sys.stderr)
        summary = run_estimator_training(run)
        out[method] = {**summary, "rows": rows, "epochs": run.epochs}
    return out


def evaluate_methods(cfg: AblationConfig, faces, *, eval_size: int = 128, lpips=None,
                     render_count: int | None = None, shifted=None,
                     more: Mapping[str, Callable] | None = None) -> tuple[list, np.ndarray]:
    """Score every trained method on the held-out `faces` (a FaceBatch of the EvalSet) against
    the engine's designer (face protocol: style parameters at the engine's defaults), the two
    reference rows (random prior vectors, the designer's constant mode), every method again
    on `shifted` (the same faces under shifted conditions, if given), and the Baseline on
    held-out engine renders. `more` adds methods given as functions from face images to
    vectors (F2P, F2P v2: actors.f2p_baselines), scored on the faces after the estimators and
    shown in Figure 6. An engine without a designer gets only the last row. Returns the
    EvalResults (table order) and the Figure-6 sheet of the first 8 faces (without the
    designer column when there is none)."""
    from swiftavatar.engines.registry import get_engine
    from swiftavatar.estimator.checkpoint import load_estimator
    from swiftavatar.estimator.predict import predict_images
    from swiftavatar.evaluation import Evaluator, figure6_sheet, has_designer
    from swiftavatar.metrics import build_lpips

    lpips = lpips if lpips is not None else build_lpips()
    results, renders, designer_images = [], {}, None
    with get_engine(cfg.engine) as engine:
        models = {}
        for method in METHODS:
            model, schema, _ = load_estimator(Path(cfg.out) / SLUGS[method])
            models[method] = (model, schema)
        if has_designer(engine.schema.engine):
            results, renders, designer_images = _against_designer(
                engine, models, faces, shifted, eval_size, lpips, more or {})
        else:
            for method, (model, schema) in models.items():        # Figure 6's faces only
                predicted = predict_images(model, schema, faces.images[:8])
                renders[method] = engine.render(predicted, eval_size).images
        # the Baseline on engine renders it never saw: the domain gap, measured
        n = render_count or len(faces.images)
        prior = engine.suggested_prior() if cfg.prior == "suggested" else None
        truth = engine.schema.sample(RENDER_EVAL_SEED, range(n), prior).with_style_from(None)
        images = engine.render(truth, eval_size).images          # (n, S, S, 3)
        model, schema = models[BASELINE]
        on_renders = Evaluator(engine, truth, size=eval_size, lpips=lpips).evaluate(
            predict_images(model, schema, images), BASELINE_ON_RENDERS, keep_images=False,
            eval_set="engine renders")
        results.append(on_renders)
    short = {BASELINE: "Baseline", DOMAIN_ADAPTATION: "+ domain adapt.",
             AUGMENTATION: "+ semantic aug."}              # column titles fit a 128-px tile
    sheet = figure6_sheet(faces.images[:8], {short.get(m, m): renders[m][:8] for m in renders},
                          None if designer_images is None else designer_images[:8])
    return results, sheet


def _against_designer(engine, models, faces, shifted, eval_size, lpips, more):
    """The held-out-face rows against the designer: each method, the `more` methods, the two
    references, each estimator on the shifted faces. Returns (results, {method: renders},
    designer renders)."""
    from swiftavatar.estimator.predict import predict_images
    from swiftavatar.evaluation import Evaluator, design
    from swiftavatar.evaluation.references import reference_vectors

    designer = design(faces.attributes, engine.schema)
    ev = Evaluator(engine, designer, size=eval_size, lpips=lpips)
    results, renders = [], {}
    for method, (model, schema) in models.items():
        res = ev.evaluate(predict_images(model, schema, faces.images), method)
        results.append(res)
        renders[method] = res.predicted_images
    for method, predict in more.items():
        res = ev.evaluate(predict(faces.images), method)
        results.append(res)
        renders[method] = res.predicted_images
    for name, vectors in reference_vectors(engine, designer).items():
        results.append(ev.evaluate(vectors, name, keep_images=False))
    if shifted is not None:
        for method, (model, schema) in models.items():
            results.append(ev.evaluate(predict_images(model, schema, shifted.images),
                                       method, keep_images=False, eval_set="shifted faces"))
    return results, renders, ev.designer_images


__all__ = ["AUGMENTATION", "AblationConfig", "BASELINE", "BASELINE_ON_RENDERS",
           "DOMAIN_ADAPTATION", "METHODS", "evaluate_methods", "train_methods"]
