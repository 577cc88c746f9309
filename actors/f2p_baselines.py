"""The paper's Table 1 baselines in the main job: F2P (Shi et al. 2019) and F2P v2 (Shi et al.
2020) beside the Baseline and SwiftAvatar estimators, on any engine with a designer.

Per run directory (each network trains once; a re-run loads it):
* OUT/f2p/parser, OUT/f2p/identity: the face parser (facial-content loss) and the identity
  embedding (identity loss, F2P v2's input), trained on the realistic domain's procedural faces
  (swiftavatar.f2p.parser_train, identity_train; plain torch in the driver).
* OUT/f2p/<engine>/imitator: the engine's imitator on the stage-1 renders (Ray Train,
  actors.train_imitator).
* OUT/f2p/<engine>/translator: F2P v2's translator, trained through the frozen imitator with
  F2P's losses on unlabelled procedural faces (swiftavatar.f2p.translator).

`predictors` gives each method as a function from face images to avatar vectors, which the
ablation's evaluation scores against the designer like the estimators (face protocol: style
parameters at the engine's defaults); `time_per_face` measures each method at batch 1.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from swiftavatar.f2p.identity_train import IdentityTrainConfig
from swiftavatar.f2p.optimize import F2PConfig
from swiftavatar.f2p.parser_train import ParserTrainConfig
from swiftavatar.f2p.translator import TranslatorTrainConfig

F2P = "F2P"
F2P_V2 = "F2P v2"
BASELINE_METHODS = (F2P, F2P_V2)
Predictor = Callable[[np.ndarray], Any]       # (N, H, W, 3) uint8 faces -> VectorBatch


@dataclass(frozen=True)
class BaselinesConfig:
    """F2P and F2P v2 in the main job. Defaults: the embedded networks of `train-parser`,
    `train-identity`, `train-imitator` (12 epochs) and F2P's paper values (50 steps, identity
    weight 0.01) as far as we could recall them (README, F2P)."""

    imitator_epochs: int = 12
    imitator_size: int = 64
    imitator_batch: int = 64         # global batch over the imitator's 2 Ray Train workers
    parser: ParserTrainConfig = field(default_factory=ParserTrainConfig)
    identity: IdentityTrainConfig = field(default_factory=IdentityTrainConfig)
    translator: TranslatorTrainConfig = field(default_factory=TranslatorTrainConfig)
    translator_faces: int = 1024     # unlabelled procedural faces of the run's seed
    f2p: F2PConfig = field(default_factory=lambda: F2PConfig(identity_weight=0.01))
    timing_faces: int = 8            # faces each method is timed on, one at a time

    def __post_init__(self) -> None:
        for name in ("imitator_epochs", "imitator_batch", "translator_faces", "timing_faces"):
            if getattr(self, name) < 1:
                raise ValueError(f"BaselinesConfig.{name} must be >= 1")
        for part in (self.parser, self.identity, self.translator, self.f2p):
            part.validate()

    @classmethod
    def quick(cls) -> "BaselinesConfig":
        """The --quick preset: every network small (numbers labelled quick)."""
        return cls(imitator_epochs=4, imitator_size=32,
                   parser=ParserTrainConfig(size=32, train_faces=256, val_faces=32, epochs=3),
                   identity=IdentityTrainConfig(identities=64, views=2, val_identities=16,
                                                epochs=4),
                   translator=dataclasses.replace(TranslatorTrainConfig(), epochs=4),
                   translator_faces=128, f2p=F2PConfig(identity_weight=0.01, steps=20),
                   timing_faces=2)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class FaceNets:
    """The face-side networks every engine's baselines share."""

    parser: Any
    identity: Any
    info: dict[str, Any]


def face_networks(cfg: BaselinesConfig, out: Path, seed: int) -> FaceNets:
    """Train (or load) the face parser and the identity network into OUT/f2p/."""
    from swiftavatar.f2p.identity_train import load_identity, save_identity, train_identity
    from swiftavatar.f2p.parser_train import load_parser, save_parser, train_parser

    parser_cfg = dataclasses.replace(cfg.parser, face_seed=seed, seed=seed)
    identity_cfg = dataclasses.replace(cfg.identity, face_seed=seed, seed=seed)
    parser, p_meta = train_or_load(
        out / "f2p" / "parser", parser_cfg, "face parser",
        lambda: train_parser(parser_cfg, log=_say), save_parser, load_parser)
    identity, i_meta = train_or_load(
        out / "f2p" / "identity", identity_cfg, "identity network",
        lambda: train_identity(identity_cfg, log=_say), save_identity, load_identity)
    return FaceNets(parser, identity, {"parser": _brief(p_meta), "identity": _brief(i_meta)})


def train_or_load(dest: Path, cfg, what: str, train: Callable, save: Callable,
                  load: Callable) -> tuple[Any, dict[str, Any]]:
    """A checkpoint in `dest` trained with `cfg` is loaded; none is trained and saved; one
    trained with another config is refused (a run directory keeps what it trained)."""
    meta_file = dest / "meta.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if meta.get("run_config") != json.loads(json.dumps(cfg.to_dict())):
            raise ValueError(f"{dest} holds a {what} trained with another config: use a new "
                             f"--out, or delete {dest} to train it again")
        model, meta = load(dest)
        _say(f"[baselines] {what}: loaded {dest}")
        return model, meta
    _say(f"[baselines] {what}: training -> {dest}")
    model, result = train()
    save(dest, model, cfg, {k: v for k, v in result.items() if k != "losses"}
         | {"losses": [round(x, 5) for x in result["losses"]]})
    return model, {"result": result, "path": str(dest)}


def _brief(meta: Mapping[str, Any]) -> dict[str, Any]:
    result = meta.get("result") or {}
    return {"path": str(meta.get("path")), "report": result.get("report"),
            "seconds": round(float(result.get("seconds", 0.0)), 1)}


@dataclass
class EngineBaselines:
    """One engine's trained baselines, ready to predict."""

    imitator: Any
    translator: Any
    schema: Any
    info: dict[str, Any]


def engine_baselines(cfg: BaselinesConfig, nets: FaceNets, out: Path, key: str,
                     seed: int) -> EngineBaselines:
    """Train (or resume / load) the engine's imitator on Ray Train and its translator."""
    from actors.train_imitator import run_imitator_training
    from swiftavatar.f2p.translator import save_translator
    from swiftavatar.f2p.translator_train import load_translator_for, train_translator_run
    from swiftavatar.imitator.checkpoint import list_checkpoints, load_imitator
    from swiftavatar.imitator.config import ImitatorTrainConfig
    from swiftavatar.imitator.model import ImitatorConfig

    base = out / "f2p" / key
    im_cfg = ImitatorTrainConfig.embedded(
        data=str(out / "render" / key), out=str(base / "imitator"), seed=seed,
        model=ImitatorConfig(image_size=cfg.imitator_size), epochs=cfg.imitator_epochs,
        batch=cfg.imitator_batch, lr_step_epochs=max(1, round(cfg.imitator_epochs * 2 / 3)),
        progress=sys.stderr.isatty())
    summary = _finished_imitator(im_cfg)
    if summary is None:
        _say(f"[baselines {key}] imitator: {cfg.imitator_epochs} epochs at "
             f"{cfg.imitator_size}px -> {im_cfg.out}")
        summary = run_imitator_training(im_cfg)
    else:
        _say(f"[baselines {key}] imitator: loaded {summary['checkpoint']}")
    found = list_checkpoints(im_cfg.out)
    imitator, schema, _ = load_imitator(found[max(found)])
    checkpoint = str(found[max(found)])  # under the run directory as given (relative stays)
    tr_cfg = dataclasses.replace(cfg.translator, seed=seed, loss=cfg.f2p)

    def train():
        return train_translator_run(
            imitator, nets.parser, nets.identity, schema, tr_cfg, faces=cfg.translator_faces,
            face_seed=seed, inputs={"imitator": checkpoint,
                                    **{k: v["path"] for k, v in nets.info.items()}}, log=_say)

    def load(path):
        model, _, meta = load_translator_for(path, schema)
        return model, meta

    translator, t_meta = train_or_load(base / "translator", tr_cfg, f"{key} translator",
                                        train, save_translator, load)
    losses = (t_meta.get("result") or {}).get("losses") or []
    return EngineBaselines(imitator, translator, schema, {
        "imitator": {"checkpoint": checkpoint, "report": summary["report"],
                     "epochs": summary["epoch"], "wall_s": summary.get("wall_s")},
        "translator": {"path": str(base / "translator"),
                       "loss_first_last": [losses[0], losses[-1]] if losses else None}})


def _finished_imitator(cfg) -> dict[str, Any] | None:
    """The summary of an imitator run in `cfg.out` that finished `cfg.epochs` with `cfg`'s
    identity fields, else None (then training starts or resumes, and refuses another config)."""
    from swiftavatar.imitator.checkpoint import CONFIG_FILE, SUMMARY_FILE
    from swiftavatar.estimator.local import resolve_config
    from swiftavatar.imitator.config import IDENTITY_FIELDS

    cfg = resolve_config(cfg)            # the paths as run_imitator_training records them
    out = Path(cfg.out)
    try:
        summary = json.loads((out / SUMMARY_FILE).read_text())
        saved = json.loads((out / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    want = json.loads(json.dumps(cfg.to_dict()))
    same = all(saved.get(k) == want.get(k) for k in IDENTITY_FIELDS)
    done = summary.get("epoch") == cfg.epochs and Path(str(summary.get("checkpoint"))).exists()
    return summary if same and done else None


def predictors(cfg: BaselinesConfig, nets: FaceNets, eb: EngineBaselines
               ) -> dict[str, Predictor]:
    """{F2P, F2P v2: faces (N, H, W, 3) uint8 -> valid VectorBatch}, style parameters at the
    engine's defaults (the face protocol the estimators are scored under)."""
    from swiftavatar.f2p.optimize import f2p
    from swiftavatar.f2p.translator import translate

    def run_f2p(images: np.ndarray):
        vectors, _ = f2p(eb.imitator, nets.parser, images, eb.schema, cfg.f2p,
                         identity=nets.identity)
        return vectors.with_style_from(None)

    def run_v2(images: np.ndarray):
        return translate(eb.translator, nets.identity, images, eb.schema,
                         eb.imitator.cfg.image_size).with_style_from(None)

    return {F2P: run_f2p, F2P_V2: run_v2}


def time_per_face(methods: Mapping[str, Predictor], faces: np.ndarray) -> dict[str, dict]:
    """Each method on `faces` one at a time (batch 1) after one warm-up face: {method:
    {"ms_median", "ms_mean", "faces", "torch_threads"}}."""
    import torch

    out = {}
    for name, predict in methods.items():
        predict(faces[:1])
        ms = []
        for i in range(len(faces)):
            t0 = time.perf_counter()
            predict(faces[i:i + 1])
            ms.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"ms_median": round(statistics.median(ms), 2),
                     "ms_mean": round(statistics.fmean(ms), 2), "faces": len(faces),
                     "torch_threads": torch.get_num_threads()}
    return out


def time_methods(ab, more: Mapping[str, Predictor], faces: np.ndarray) -> dict[str, dict]:
    """Table 1's speed column: the Baseline and SwiftAvatar (+ semantic augmentation)
    estimators of the ablation `ab` and the `more` methods, each at batch 1 on `faces`."""
    from actors.ablation import AUGMENTATION, BASELINE, SLUGS
    from swiftavatar.estimator.checkpoint import load_estimator
    from swiftavatar.estimator.predict import predict_images

    def estimator(method: str):
        model, schema, _ = load_estimator(Path(ab.out) / SLUGS[method])
        return lambda images: predict_images(model, schema, images, batch_size=1)

    methods = {BASELINE: estimator(BASELINE), **more, AUGMENTATION: estimator(AUGMENTATION)}
    _say(f"[table 1] timing {', '.join(methods)} at batch 1 on {len(faces)} faces")
    return time_per_face(methods, faces)


__all__ = ["BASELINE_METHODS", "BaselinesConfig", "EngineBaselines", "F2P", "F2P_V2",
           "FaceNets", "engine_baselines", "face_networks", "predictors", "time_methods",
           "time_per_face", "train_or_load"]
