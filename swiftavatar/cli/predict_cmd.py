"""`swiftavatar predict IMAGE... --model CKPT`: selfies -> avatar vectors (JSON) + renders (PNG).

Every good image is answered even when others are bad; the bad ones are listed on stderr and
in OUT/errors.json, and the exit code is then 1 (2 for bad flags or an unusable model).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, config_from_args
from swiftavatar.config import StageConfig, option
from swiftavatar.pretrained import ESTIMATOR, PREFIX, shipped_names

ALIGN_MODES = ("auto", "mediapipe", "none")


@dataclass(frozen=True)
class PredictConfig(StageConfig):
    """The options of `predict` (the images are its arguments)."""

    model: str = option(metavar="CKPT", help="estimator checkpoint: file, checkpoint dir, "
                                             "training run dir, or a shipped one: "
                                             + ", ".join(f"{PREFIX}{n}" for n in
                                                         shipped_names(ESTIMATOR)))
    out: str = option("predictions", help="output folder")
    engine: str | None = option(
        None, metavar="SPEC",
        help="engine to render with: a registered name, module:Class or grpc://HOST:PORT "
             "(default: the checkpoint's engine by name, which works for registered engines "
             "only); its schema must be the one the estimator was trained on")
    size: int = option(256, help="render size in pixels")
    style: str | None = option(
        None, metavar="VECTOR.json",
        help="an avatar vector (JSON object of parameter: value, as OUT/<name>.json holds "
             "under 'vector'; missing parameters take defaults) whose style parameters "
             "(background, clothing, ...: `swiftavatar engines describe`) every prediction "
             "takes; default: the engine's defaults. Face parameters always come from the "
             "photo")
    align: str = option(
        "auto", choices=ALIGN_MODES,
        help="mediapipe: detect the face and frame it like the training faces (a photo "
             "without a face is reported, not answered); none: the image is already a "
             "centred head crop (it is centre-cropped to a square); auto (default): "
             "mediapipe when installed, else none with a warning")
    min_face_confidence: float = option(
        0.5, metavar="P", help="BlazeFace detection threshold in (0, 1) (default {default})")
    device: str = option("cpu", help="torch device")
    batch_size: int = option(32, help="images per forward pass")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.size >= 16, "size", "must be >= 16")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(0.0 < self.min_face_confidence < 1.0, "min_face_confidence", "must be in (0, 1)")
        return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="predict the avatar vector of face images with a trained estimator",
        description="Predict the avatar vector of each face image in one forward pass of a "
                    "trained estimator, render it with the estimator's engine and write "
                    "OUT/<name>.json, OUT/<name>.png and OUT/predictions.jsonl. Each photo's "
                    "face is found and framed like the training faces (mediapipe BlazeFace, "
                    "--align; the crop the estimator saw is OUT/<name>.input.png). Exit code "
                    "0: all answered; 1: some images were bad or had no face (listed on "
                    "stderr and in OUT/errors.json); 2: bad flags.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="face images (JPEG, PNG, ...)")
    add_config_flags(p, PredictConfig)
    p.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    config_from_args(PredictConfig, args)  # bad values: CliError naming the flag
    import numpy as np

    from swiftavatar.face_align import MEDIAPIPE_INSTALL, FaceAligner, mediapipe_available

    align = args.align
    if align == "auto":
        align = "mediapipe" if mediapipe_available() else "none"
        if align == "none":
            print(f"swiftavatar predict: mediapipe is not installed, so faces are not "
                  f"detected: each image is used as a centred head crop ({MEDIAPIPE_INSTALL} "
                  f"adds detection; --align none hides this warning)", file=sys.stderr)
    elif align == "mediapipe" and not mediapipe_available():
        raise CliError(f"--align mediapipe: mediapipe is not installed: {MEDIAPIPE_INSTALL}")

    from swiftavatar.engines.registry import (UnknownEngineError, UntrustedEngineError,
                                              get_engine, get_registered_engine)
    from swiftavatar.estimator.checkpoint import EstimatorCheckpointError, load_estimator
    from swiftavatar.estimator.model import optimize_for_inference
    from swiftavatar.estimator.predict import predict_images
    from swiftavatar.selfies import (ImageInputError, load_face_image, load_rgb_image,
                                     resize_square)

    try:
        model, schema, meta = load_estimator(args.model, device=args.device)
    except (EstimatorCheckpointError, FileNotFoundError) as err:
        raise CliError(f"--model: {err}") from None
    model = optimize_for_inference(model)          # BatchNorm folded: about 30% faster
    try:
        engine = (get_engine(args.engine) if args.engine else
                  get_registered_engine(schema.engine, source=f"--model {args.model}"))
    except UntrustedEngineError as err:
        raise CliError(str(err)) from None
    except UnknownEngineError as err:
        if args.engine:
            raise CliError(f"--engine: {err}") from None
        raise CliError(f"unknown engine {schema.engine!r} (the estimator's engine is not "
                       f"registered here): pass --engine with the spec its data was rendered "
                       f"with (module:Class, grpc://HOST:PORT or a registered name)") from None
    except (KeyError, ValueError) as err:
        raise CliError(f"--engine: {err.args[0] if err.args else err}") from None
    with engine:
        if engine.schema.fingerprint != schema.fingerprint:
            raise CliError(f"--engine: {args.engine or schema.engine} has schema "
                           f"{engine.schema.fingerprint}, the estimator was trained on "
                           f"{schema.fingerprint} ({schema.engine} {schema.version})")
        base = _style_vector(args.style, schema) if args.style else None
        good: list[tuple[str, np.ndarray]] = []
        errors: list[dict[str, str]] = []
        size = model.config.input_size
        aligner = (FaceAligner(args.min_face_confidence) if align == "mediapipe"
                   else contextlib.nullcontext())
        crops: dict[str, dict[str, Any]] = {}
        with aligner:
            for path in args.images:
                try:
                    if align == "mediapipe":
                        crop, how = aligner.align(load_rgb_image(path), size, name=path)
                        det = how.detection
                        crops[path] = {"face_score": round(det.score, 4),
                                       "face_box": [round(v, 1) for v in det.box]}
                        good.append((path, crop))
                    else:
                        good.append((path, resize_square(load_face_image(path), size)))
                except ImageInputError as err:
                    errors.append({"image": path, "error": str(err)})
                    print(f"swiftavatar predict: {err}", file=sys.stderr)
        out = Path(args.out)
        rows: list[dict[str, Any]] = []
        if good:
            images = np.stack([im for _, im in good])              # (N, S, S, 3) uint8
            vectors = predict_images(model, schema, images, args.device, args.batch_size,
                                     base=base)
            renders = engine.render(vectors, args.size).images     # (N, size, size, 3)
            names = _names([p for p, _ in good])
            for (path, crop), name, vec, render in zip(good, names, vectors, renders):
                row = {"image": path, "engine": schema.engine,
                       "schema_fingerprint": schema.fingerprint, "vector": vec.to_dict(),
                       "render": str(out / f"{name}{IMAGE_SUFFIXES[0]}"),
                       "model": meta["path"], "align": align,
                       "input": str(out / f"{name}{IMAGE_SUFFIXES[1]}"),
                       **crops.get(path, {})}
                _save(out, name, row, render, crop)
                rows.append(row)
                print(json.dumps(row, sort_keys=True))
        _write_text(out / "predictions.jsonl",
                    "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        _write_text(out / "errors.json", json.dumps(errors, indent=2) + "\n")
    print(f"swiftavatar predict: {len(rows)} answered, {len(errors)} bad -> {out}",
          file=sys.stderr)
    return 1 if errors else 0


def _style_vector(path: str, schema):
    """--style: a JSON object {parameter: value} (or a prediction file with a 'vector') ->
    a one-row VectorBatch; missing parameters take the engine defaults."""
    from swiftavatar.engines.schema import InvalidVectorError

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CliError(f"--style: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CliError(f"--style: {path} is not a readable JSON file ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("vector"), dict):
        data = data["vector"]
    try:
        return schema.vector(data, fill_defaults=True).batch()
    except InvalidVectorError as err:
        raise CliError(f"--style: {path}: {err}") from None


# the files a run writes besides its per-image ones, and what each image's name gets
RUN_FILES = ("predictions.jsonl", "errors.json")
IMAGE_SUFFIXES = (".png", ".input.png", ".json")


def _names(paths: list[str]) -> list[str]:
    """Output names from the file stems, unique: no two images and no image and the run's own
    files (RUN_FILES) share an output file, compared case-insensitively (a.jpg, a.png,
    a-2.jpg -> a, a-2, a-2-2; errors.jpg -> errors-2, as errors.json is the error list)."""
    taken = {f.casefold() for f in RUN_FILES}
    out = []
    for p in paths:
        stem = Path(p).stem or "image"
        name, k = stem, 1
        while any((name + sfx).casefold() in taken for sfx in IMAGE_SUFFIXES):
            k += 1
            name = f"{stem}-{k}"
        taken.update((name + sfx).casefold() for sfx in IMAGE_SUFFIXES)
        out.append(name)
    return out


def _save(out: Path, name: str, row: dict, render, crop) -> None:
    from swiftavatar.viz import save_png

    png, input_png, js = IMAGE_SUFFIXES
    save_png(render, out / f"{name}{png}")
    save_png(crop, out / f"{name}{input_png}")         # what the estimator saw
    _write_text(out / f"{name}{js}", json.dumps(row, indent=2, sort_keys=True) + "\n")


def _write_text(path: Path, text: str) -> None:
    from swiftavatar import atomic

    atomic.write_text(path, text)
