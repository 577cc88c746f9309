"""Estimator releases: the checkpoint of a finished run made small enough to ship.

A release is an ordinary `swiftavatar.estimator.v1` checkpoint file (`release_payload`): float16
weights, no optimiser state, the model's config, engine schema and fingerprint, the trunk's
provenance (`backbone_info`), the run config, metrics, and under "release" its dtype and where
it came from (source checkpoint, epoch, step). `load_estimator` reads it into float32 modules
(weights_only=True), so it predicts like the checkpoint it came from up to float16 rounding;
`compare_release` measures how far.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from swiftavatar import atomic
from swiftavatar.estimator.checkpoint import (find_checkpoint, model_from_payload,
                                              read_checkpoint, release_payload)


def release_estimator(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write the float16 release of the estimator `src` (a checkpoint file, checkpoint directory
    or run directory: its latest checkpoint) to the file `dst`, atomically (a temp file renamed
    into place: never half-written). Returns {"path", "bytes", "source", "epoch", "step"}."""
    payload = read_checkpoint(src)
    source = {"source": payload["path"], "epoch": payload["epoch"], "step": payload["step"]}
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.torch_save(out, release_payload(payload, source=source))
    return {"path": str(out), "bytes": out.stat().st_size, **source}


def compare_release(src: str | Path, release: str | Path,
                    images: np.ndarray) -> dict[str, Any]:
    """How the release's predictions differ from the float32 checkpoint's on `images`
    ((N, H, W, 3) uint8): the largest absolute difference of the continuous outputs (sigmoid
    values in [0, 1], i.e. in units of each parameter's range), of the option probabilities
    (softmax of the logits) and of the raw logits; whether the decoded avatar vectors choose
    the same option for every discrete parameter (`options_identical`), and where not
    (`changed`: face index, parameter, and the float32 checkpoint's margin between its top two
    option probabilities: a near tie that float16 rounding can flip)."""
    from swiftavatar.estimator.predict import predict_outputs

    outs, schema = [], None
    for path in (src, release):
        model, schema = model_from_payload(read_checkpoint(find_checkpoint(path)))
        outs.append(predict_outputs(model, images))
    (a, b) = outs
    changed = []
    for j, x, y in zip(schema.face_discrete, a["logits"], b["logits"]):
        top = torch.softmax(x, 1).topk(min(2, x.shape[1]), dim=1).values
        for i in torch.nonzero(x.argmax(1) != y.argmax(1)).flatten().tolist():
            margin = float(top[i, 0] - top[i, -1])
            changed.append({"face": i, "param": schema.discrete[j].name,
                            "margin": round(margin, 6)})
    prob = max((float((torch.softmax(x, 1) - torch.softmax(y, 1)).abs().max())
                for x, y in zip(a["logits"], b["logits"])), default=0.0)
    logit = max((float((x - y).abs().max()) for x, y in zip(a["logits"], b["logits"])),
                default=0.0)
    cont = float((a["cont"] - b["cont"]).abs().max()) if a["cont"].numel() else 0.0
    return {"faces": int(len(images)), "max_abs_cont": cont, "max_abs_prob": prob,
            "max_abs_logit": logit, "options_identical": not changed, "changed": changed}


__all__ = ["compare_release", "release_estimator"]
