"""One run of the check set: `predict` on the photos, each avatar read back in the records'
categories, scored per attribute, and the files written. `swiftavatar check-photos` and the
main job both call `check_photos`.

OUT/predict/ holds predict's files; OUT/check_photos.json (records, readings, table),
OUT/table.txt and OUT/sheet.png (photo | crop | avatar | record and reading per row).
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from swiftavatar.checkset.records import PhotoRecord

RESULTS, TABLE, SHEET, PREDICT_DIR = "check_photos.json", "table.txt", "sheet.png", "predict"


class CheckSetError(ValueError):
    """The model cannot be checked (its engine's avatars cannot be read); one line."""


def check_photos(records: Sequence[PhotoRecord], model: str, engine: str | None, out: str | Path,
                 align: str = "auto", *, size: int = 256, device: str = "cpu",
                 min_face_confidence: float = 0.5, quiet: bool = False,
                 records_name: str = "shipped") -> dict[str, Any]:
    """Check the estimator `model` (a checkpoint path or `pretrained:NAME`) on `records`,
    rendering with `engine` (a spec; None: the estimator's engine) and framing faces by
    `align` (predict's --align). A photo without a face is not answered and counts as wrong.
    `quiet` hides predict's messages (stderr, mediapipe's too). Returns what
    OUT/check_photos.json holds plus "text" (the table as text), "missing" (photo ids not
    answered) and "files" (sheet, table, results). Raises PredictorError (a ValueError naming the
    flag) for a bad model, engine or align, and CheckSetError for an engine whose avatars
    cannot be read."""
    from swiftavatar.checkset.reading import readable_fields
    from swiftavatar.checkset.score import format_table, score
    from swiftavatar.face_align import _quiet_stderr
    from swiftavatar.prediction_files import write_predictions
    from swiftavatar.predictor import AvatarPredictor
    from swiftavatar.selfies import ImageInputError, load_rgb_image

    out = Path(out)
    pred_dir = out / PREDICT_DIR
    hush = ((_quiet_stderr(), contextlib.redirect_stderr(io.StringIO())) if quiet
            else (contextlib.nullcontext(),) * 2)
    with hush[0], hush[1], AvatarPredictor(model, engine, align, device,
                                           min_face_confidence=min_face_confidence) as predictor:
        if predictor.warning:
            print(predictor.warning, file=sys.stderr)
        schema = predictor.schema
        fields = readable_fields(schema)
        if not fields:
            raise CheckSetError(f"engine {schema.engine!r} has no noticed-attribute table "
                                f"(swiftavatar.evaluation.noticed.register_attributes), so "
                                f"its avatars cannot be read")
        images, names, errors = [], [], {}
        for r in records:
            try:
                images.append(load_rgb_image(r.path))
                names.append(str(r.path))
            except ImageInputError as err:
                errors[str(r.path)] = str(err)
        results = predictor.predict(images, names)
        errors.update({r.name: r.error for r in results if not r.ok})
        for path, err in errors.items():
            print(f"swiftavatar predict: {err}", file=sys.stderr)
        rows = write_predictions(pred_dir, results, predictor, size,
                                 [{"image": k, "error": v} for k, v in errors.items()])
    answered = {row["image"]: row for row in rows}
    results = _results(records, answered, errors, schema, fields)
    table = score([r["seen"] for r in results], [r["avatar"] for r in results], fields)
    text = format_table(table)
    files = {"sheet": str(out / SHEET), "table": str(out / TABLE), "results": str(out / RESULTS)}
    _write_sheet(out / SHEET, results)
    _write_text(out / TABLE, text + "\n")
    summary = {"model": model, "engine": schema.engine, "align": align,
               "records": records_name, "fields": fields, "table": table, "photos": results}
    _write_text(out / RESULTS, json.dumps(summary, indent=2) + "\n")
    missing = [r["id"] for r in results if r["avatar"] is None]
    return {**summary, "text": text, "missing": missing, "files": files}


def one_line(engine: str, table: Sequence[dict[str, Any]]) -> str:
    """'check photos ENGINE: skin 2/2, hair 1/2, ...' (the sheet's short field names)."""
    from swiftavatar.checkset.sheet import SHORT

    return (f"check photos {engine}: "
            + ", ".join(f"{SHORT[r['attribute']]} {r['right']}/{r['of']}" for r in table))


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


def _write_text(path: Path, text: str) -> None:
    from swiftavatar import atomic

    atomic.write_text(path, text)


__all__ = ["CheckSetError", "PREDICT_DIR", "RESULTS", "SHEET", "TABLE", "check_photos",
           "one_line"]
