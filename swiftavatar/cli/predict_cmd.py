"""`swiftavatar predict IMAGE... --model CKPT`: selfies -> avatar vectors (JSON) + renders (PNG).

Every good image is answered even when others are bad; the bad ones are listed on stderr and
in OUT/errors.json, and the exit code is then 1 (2 for bad flags or an unusable model).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from dataclasses import dataclass

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
    from swiftavatar.prediction_files import write_predictions
    from swiftavatar.predictor import AvatarPredictor, PhotoResult, PredictorError
    from swiftavatar.selfies import ImageInputError, load_rgb_image

    try:
        predictor = AvatarPredictor(args.model, args.engine, args.align, args.device,
                                    min_face_confidence=args.min_face_confidence,
                                    batch_size=args.batch_size)
    except PredictorError as err:
        raise CliError(str(err)) from None
    if predictor.warning:
        print(predictor.warning, file=sys.stderr)
    with predictor:
        if args.style:
            predictor.style = _style_vector(args.style, predictor.schema)
        framed, errors = [], []
        for path in args.images:
            try:
                framed.append((path, predictor.frame(load_rgb_image(path), name=path)))
            except ImageInputError as err:
                errors.append({"image": path, "error": str(err)})
                print(f"swiftavatar predict: {err}", file=sys.stderr)
        vectors = (predictor.estimator.estimate([f.crop for _, f in framed],
                                                base=predictor.style) if framed else [])
        results = [PhotoResult(path, vec.batch(), f.crop, f.face_box, f.face_score)
                   for (path, f), vec in zip(framed, vectors)]
        out = Path(args.out)
        rows = write_predictions(out, results, predictor, args.size, errors)
        for row in rows:
            print(json.dumps(row, sort_keys=True))
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

