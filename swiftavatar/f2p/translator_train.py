"""One F2P v2 translator run as the command line and the main job make it: render unlabelled
procedural faces (swiftavatar.faces.procedural), train the translator on them through the
frozen imitator with F2P's losses (swiftavatar.f2p.translator.train_translator), and gather
what its checkpoint records: the engine schema the translator decodes into (so a loader can
refuse a translator meant for another engine or imitator), the input networks, the face set
and the per-epoch losses.

Pure torch: no Ray. Files only through save_translator / load_translator.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from swiftavatar.config import StageConfig, option
from swiftavatar.engines.prior import Prior
from swiftavatar.engines.schema import EngineSchema
from swiftavatar.f2p.optimize import Identity
from swiftavatar.f2p.parser import FaceParser
from swiftavatar.f2p.translator import Translator, TranslatorCheckpointError, \
    TranslatorTrainConfig, load_translator, train_translator
from swiftavatar.imitator.model import Imitator


@dataclass(frozen=True)
class TranslatorFacesConfig(StageConfig):
    """The unlabelled faces a translator trains on: procedural faces `0 .. faces-1` of
    `face_seed`, rendered at `size` px (None: the imitator's image size)."""

    faces: int = option(1024, help="unlabelled procedural faces to train on")
    face_seed: int = option(0, help="seed of the procedural face domain")
    size: int | None = option(None, help="side in px the faces are rendered at (default: the "
                                         "imitator's image size)")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.faces >= 1, "faces", "must be >= 1")
        need(self.face_seed >= 0, "face_seed", "must be >= 0")
        need(self.size is None or self.size >= 16, "size", "must be >= 16")
        return out


def train_translator_run(imitator: Imitator, parser: FaceParser, identity: Identity,
                         schema: EngineSchema, cfg: TranslatorTrainConfig | None = None, *,
                         faces: int = 1024, face_seed: int = 0, size: int | None = None,
                         inputs: Mapping[str, str] | None = None,
                         prior: Prior | None = None,
                         device: str | torch.device = "cpu",
                         log: Callable[[str], None] | None = None
                         ) -> tuple[Translator, dict[str, Any]]:
    """Render `faces` procedural faces of `face_seed` at `size` px (default: the imitator's
    image size) and train a translator on them -> (translator in eval mode, result). The
    result is what save_translator records: "schema" (the engine schema as JSON), "engine",
    "schema_fingerprint", "image_size" (the imitator's, the side photos are fed at),
    "embedding_dim", "inputs" (`inputs`: the networks' paths, by role), "faces",
    "face_seed", "face_size", "losses" (per epoch), "loopback_prior" (`prior`, which draws
    the loopback term's vectors; None: uniform), "render_seconds", "train_seconds" and
    "seconds" (both)."""
    from swiftavatar.faces.procedural import face_images

    cfg = (cfg or TranslatorTrainConfig()).validate()
    TranslatorFacesConfig(faces=faces, face_seed=face_seed, size=size).validate()
    image_size = imitator.cfg.image_size
    t0 = time.perf_counter()
    images = face_images(face_seed, list(range(faces)), size or image_size)[0]
    render_seconds = time.perf_counter() - t0
    if log is not None:
        log(f"rendered {faces} faces at {size or image_size} px in {render_seconds:.1f} s")
    model, trained = train_translator(imitator, parser, identity, images, schema, cfg,
                                      prior=prior, device=device, log=log)
    return model, {
        "schema": json.loads(schema.to_json()), "engine": schema.engine,
        "schema_fingerprint": schema.fingerprint, "image_size": int(image_size),
        "embedding_dim": model.dim, "inputs": dict(inputs or {}), "faces": int(faces),
        "face_seed": int(face_seed), "face_size": int(size or image_size),
        "losses": trained["losses"],
        "loopback_prior": None if prior is None else prior.to_dict(), "render_seconds": render_seconds,
        "train_seconds": trained["seconds"], "seconds": time.perf_counter() - t0}


def translator_schema(meta: Mapping[str, Any]) -> EngineSchema:
    """The engine schema a loaded translator's checkpoint (load_translator's meta) records."""
    where = meta.get("path", "the translator checkpoint")
    raw = (meta.get("result") or {}).get("schema")
    if not isinstance(raw, Mapping):
        raise TranslatorCheckpointError(
            f"{where}: records no engine schema; train it with `swiftavatar train-translator` "
            f"(or save it with swiftavatar.f2p.translator_train's result)")
    try:
        return EngineSchema.from_json(json.dumps(raw))
    except (ValueError, KeyError, TypeError) as err:
        raise TranslatorCheckpointError(f"{where}: its engine schema is unreadable ({err}); "
                                        f"train the translator again") from None


def load_translator_for(path: str | Path, schema: EngineSchema | None = None,
                        device: str | torch.device = "cpu"
                        ) -> tuple[Translator, EngineSchema, dict[str, Any]]:
    """(translator in eval mode on `device`, the engine schema it decodes into, the
    checkpoint's plain values). With `schema` (the imitator's or the engine's), a translator
    trained for another schema is refused with TranslatorCheckpointError."""
    model, meta = load_translator(path, device)
    own = translator_schema(meta)
    if schema is not None and own.fingerprint != schema.fingerprint:
        raise TranslatorCheckpointError(
            f"{meta['path']}: trained for engine {own.engine!r} schema {own.fingerprint}, but "
            f"the imitator is for engine {schema.engine!r} schema {schema.fingerprint}; train "
            f"the translator with this imitator (`swiftavatar train-translator`)")
    if (model.num_continuous, model.num_options) != (own.n_continuous, tuple(own.num_options)):
        raise TranslatorCheckpointError(f"{meta['path']}: its output does not fit the engine "
                                        f"schema it records; train the translator again")
    return model, own, meta


__all__ = ["TranslatorFacesConfig", "load_translator_for", "train_translator_run",
           "translator_schema"]
