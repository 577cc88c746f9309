"""`swiftavatar check-photos --model CKPT --out DIR`: real photos -> avatars, scored per attribute
against what a person sees in each photo (the check set, swiftavatar/checkset/).

It runs `predict` on the photos (OUT/predict/ holds its files), reads the avatar's skin tone,
hair colour and length, glasses, facial hair and headwear back from each predicted vector,
prints per attribute how many photos the avatar gets right, and writes OUT/check_photos.json,
OUT/table.txt and OUT/sheet.png (photo | crop | avatar | record and reading per row).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, config_from_args
from swiftavatar.cli.predict_cmd import PredictConfig, _predict, _write_text
from swiftavatar.config import StageConfig, option

# the predict options check-photos passes on, in the order its help lists them
PREDICT_FLAGS = ("model", "engine", "align", "min_face_confidence", "size", "device")
RESULTS, TABLE, SHEET, PREDICT_DIR = "check_photos.json", "table.txt", "sheet.png", "predict"


@dataclass(frozen=True)
class CheckPhotosConfig(StageConfig):
    """The options of `check-photos` besides the predict ones (PREDICT_FLAGS)."""

    out: str = option(metavar="DIR", required=True, help="output folder")
    photos: str | None = option(
        None, metavar="DIR",
        help="a folder of your own photos to check instead of the shipped set; every image "
             "in it needs a record in --records")
    records: str | None = option(
        None, metavar="FILE",
        help="the records file of --photos (JSON in the shipped records' format: "
             "swiftavatar/checkset/photos/records.json)")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need((self.photos is None) == (self.records is None), "records",
             "must be given together with --photos (and --photos with it)")
        return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-photos", help="score an estimator's avatars on real photos with hand-written "
                             "records",
        description="Run `predict` on real photos (default: the shipped check set, public-"
                    "domain portraits) and count per attribute (skin tone, hair colour, hair "
                    "length, glasses, facial hair, headwear) on how many the avatar shows "
                    "what a person sees in the photo. Writes OUT/table.txt, "
                    "OUT/check_photos.json and OUT/sheet.png; OUT/predict/ holds predict's "
                    "files. Exit code 0: all photos answered; 1: some had no face found "
                    "(counted as wrong); 2: bad flags, records or photos.")
    add_config_flags(p, PredictConfig, PREDICT_FLAGS)
    add_config_flags(p, CheckPhotosConfig)
    p.set_defaults(handler=_check_photos)


def _check_photos(args: argparse.Namespace) -> int:
    cfg = config_from_args(CheckPhotosConfig, args)
    config_from_args(PredictConfig, args)
    from swiftavatar.checkset.records import RecordError, load_records

    if cfg.photos is not None and not Path(cfg.photos).is_dir():
        raise CliError(f"--photos: {cfg.photos} is not a folder")
    try:
        records = (load_records(cfg.records, cfg.photos) if cfg.photos is not None
                   else load_records())
    except RecordError as err:
        raise CliError(f"{'--records' if cfg.photos else 'the shipped check set'}: {err}") \
            from None
    schema = _schema(args.model)
    from swiftavatar.checkset.reading import readable_fields

    fields = readable_fields(schema)
    if not fields:
        raise CliError(f"--model: engine {schema.engine!r} has no noticed-attribute table "
                       f"(swiftavatar.evaluation.noticed.register_attributes), so its avatars "
                       f"cannot be read")
    out = Path(cfg.out)
    pred_dir = out / PREDICT_DIR
    ns = argparse.Namespace(**{f: getattr(args, f) for f in PREDICT_FLAGS},
                            images=[str(r.path) for r in records], out=str(pred_dir),
                            style=None, batch_size=PredictConfig.batch_size)
    with contextlib.redirect_stdout(io.StringIO()):        # predict's JSON lines: in pred_dir
        _predict(ns)
    answered = {row["image"]: row for row in _jsonl(pred_dir / "predictions.jsonl")}
    errors = {e["image"]: e["error"] for e in json.loads((pred_dir / "errors.json").read_text())}
    results = _results(records, answered, errors, schema, fields)
    from swiftavatar.checkset.score import format_table, score

    table = score([r["seen"] for r in results], [r["avatar"] for r in results], fields)
    text = format_table(table)
    print(text)
    _write_sheet(out / SHEET, results)
    _write_text(out / TABLE, text + "\n")
    _write_text(out / RESULTS, json.dumps(
        {"model": args.model, "engine": schema.engine, "align": args.align,
         "records": str(cfg.records) if cfg.photos else "shipped", "fields": fields,
         "table": table, "photos": results}, indent=2) + "\n")
    missing = [r["id"] for r in results if r["avatar"] is None]
    print(f"swiftavatar check-photos: {len(results) - len(missing)} of {len(results)} photos "
          f"answered{' (no face: ' + ', '.join(missing) + ')' if missing else ''} -> {out}",
          file=sys.stderr)
    return 1 if missing else 0


def _schema(model: str):
    """The engine schema the estimator was trained on."""
    from swiftavatar.engines.schema import EngineSchema
    from swiftavatar.estimator.checkpoint import EstimatorCheckpointError, read_checkpoint

    try:
        return EngineSchema.from_json(read_checkpoint(model)["engine_schema"])
    except (EstimatorCheckpointError, FileNotFoundError) as err:
        raise CliError(f"--model: {err}") from None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _results(records, answered, errors, schema, fields) -> list[dict[str, Any]]:
    """Per photo: its record, the avatar's reading (None: not answered) and predict's files."""
    from swiftavatar.checkset.reading import read_avatars
    from swiftavatar.engines.vectors import VectorBatch

    rows = [answered.get(str(r.path)) for r in records]
    got = [row for row in rows if row is not None]
    readings = iter(read_avatars(VectorBatch.stack([schema.vector(row["vector"])
                                                    for row in got])) if got else [])
    out = []
    for rec, row in zip(records, rows):
        item: dict[str, Any] = {"id": rec.photo_id, "file": str(rec.path),
                                "seen": {f: rec.seen[f] for f in fields},
                                "avatar": next(readings) if row is not None else None}
        if row is None:
            item["error"] = errors.get(str(rec.path), "not answered")
        else:
            item.update(vector=row["vector"], render=row["render"], input=row["input"])
        out.append(item)
    return out


def _write_sheet(path: Path, results: list[dict[str, Any]]) -> None:
    import numpy as np
    from PIL import Image

    from swiftavatar.checkset.sheet import caption, check_sheet
    from swiftavatar.viz import save_png

    def load(p: str | None):
        return None if p is None else np.asarray(Image.open(p).convert("RGB"))

    rows = [(load(r["file"]), load(r.get("input")), load(r.get("render")),
             caption(r["id"], r["seen"], r["avatar"])) for r in results]
    save_png(check_sheet(rows), path)
