"""The files a prediction run writes (`swiftavatar predict`, the check set's OUT/predict/):
per image OUT/<name>.json, OUT/<name>.png (the render) and OUT/<name>.input.png (the crop the
estimator saw); per run OUT/predictions.jsonl and OUT/errors.json. Each is written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

# the files a run writes besides its per-image ones, and what each image's name gets
RUN_FILES = ("predictions.jsonl", "errors.json")
IMAGE_SUFFIXES = (".png", ".input.png", ".json")


def output_names(paths: Sequence[str]) -> list[str]:
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


def write_predictions(out: str | Path, results: Sequence[Any], predictor: Any,
                      size: int, errors: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Render each answered PhotoResult (its `name` is the image path) at `size` with
    `predictor`, write its files and the run's files into `out`, and return the rows
    (predictions.jsonl's lines). `errors` ({"image", "error"}) go to errors.json."""
    from swiftavatar.engines.vectors import VectorBatch

    out = Path(out)
    good = [r for r in results if r.ok]
    rows: list[dict[str, Any]] = []
    if good:
        schema = predictor.schema
        vectors = VectorBatch.stack([r.vector[0] for r in good])
        renders = predictor.engine.render(vectors, size).images      # (N, size, size, 3)
        png, input_png, _ = IMAGE_SUFFIXES
        for r, name, vec, render in zip(good, output_names([r.name for r in good]), vectors,
                                        renders):
            face = ({} if r.face_score is None else
                    {"face_score": r.face_score, "face_box": list(r.face_box)})
            row = {"image": r.name, "engine": schema.engine,
                   "schema_fingerprint": schema.fingerprint, "vector": vec.to_dict(),
                   "render": str(out / f"{name}{png}"),
                   "model": predictor.estimator.meta["path"], "align": predictor.align,
                   "input": str(out / f"{name}{input_png}"), **face}
            _save(out, name, row, render, r.crop)
            rows.append(row)
    _write_text(out / RUN_FILES[0], "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    _write_text(out / RUN_FILES[1], json.dumps(errors, indent=2) + "\n")
    return rows


def _save(out: Path, name: str, row: dict, render, crop) -> None:
    from swiftavatar.viz import save_png

    png, input_png, js = IMAGE_SUFFIXES
    save_png(render, out / f"{name}{png}")
    save_png(crop, out / f"{name}{input_png}")         # what the estimator saw
    _write_text(out / f"{name}{js}", json.dumps(row, indent=2, sort_keys=True) + "\n")


def _write_text(path: Path, text: str) -> None:
    from swiftavatar import atomic

    atomic.write_text(path, text)


__all__ = ["IMAGE_SUFFIXES", "RUN_FILES", "output_names", "write_predictions"]
