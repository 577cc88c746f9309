"""Release the main job's estimators as the shipped `pretrained:` ones.

    python scripts/release_estimators.py RUN_DIR [--dest DIR] [--engines toon avataaars]

For each engine under RUN_DIR/estimators/ (a main-job run directory, `swiftavatar demo --out
RUN_DIR`), the `semantic_augmentation` run (the paper's final method) is written as a float16
release (swiftavatar.estimator.release) to DEST/estimator_<engine>_<input size>.pt (default
DEST: the package's swiftavatar/pretrained/), atomically. It prints each file's size and how
far the release's predictions are from the float32 checkpoint's on a few held-out procedural
faces and the check-set photos: the largest absolute difference of the continuous outputs and
option probabilities (both in [0, 1]) and of the logits, and whether the decoded vectors choose
the same option for every discrete parameter (their continuous values differ by the rounding).
Exit code 2 when RUN_DIR holds no such estimator.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

METHOD_DIR = "semantic_augmentation"   # actors.ablation.SLUGS["+ semantic augmentation"]
FACE_SEED = 424_242                    # held-out procedural faces (no training seed)


def comparison_faces(size: int, n: int):
    """(n procedural faces + the check-set photos centre-cropped) as (N, size, size, 3) uint8."""
    import numpy as np

    from swiftavatar.checkset.records import load_records
    from swiftavatar.faces.procedural import face_images
    from swiftavatar.selfies import load_face_image, resize_square

    faces, _ = face_images(FACE_SEED, range(n), size)
    photos = [resize_square(load_face_image(str(r.path)), size) for r in load_records()]
    return np.concatenate([np.asarray(faces, np.uint8), np.stack(photos)])


def main(argv: list[str] | None = None) -> int:
    from swiftavatar.estimator.checkpoint import EstimatorCheckpointError, read_checkpoint
    from swiftavatar.estimator.release import compare_release, release_estimator
    from swiftavatar.pretrained import estimator_file_name, release_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", metavar="RUN_DIR", help="a main-job run directory")
    p.add_argument("--dest", default=str(release_dir()), help="folder for the releases")
    p.add_argument("--engines", nargs="+", help="engines to release (default: all found)")
    p.add_argument("--faces", type=int, default=8, help="procedural faces to compare on")
    a = p.parse_args(argv)
    root = Path(a.run_dir) / "estimators"
    found = sorted(d.parent.name for d in root.glob(f"*/{METHOD_DIR}") if d.is_dir())
    engines = a.engines or found
    missing = [e for e in engines if e not in found]
    if not engines or missing:
        print(f"release_estimators: no {root}/{missing[0] if missing else 'ENGINE'}/"
              f"{METHOD_DIR} run: pass a main-job run directory whose estimators finished",
              file=sys.stderr)
        return 2
    for engine in engines:
        src = root / engine / METHOD_DIR
        try:
            size = int(read_checkpoint(src)["model_args"]["config"]["input_size"])
        except EstimatorCheckpointError as err:
            print(f"release_estimators: {err}", file=sys.stderr)
            return 2
        info = release_estimator(src, Path(a.dest) / estimator_file_name(engine, size))
        diff = compare_release(src, info["path"], comparison_faces(size, a.faces))
        print(f"{engine}: {info['path']} {info['bytes'] / 2**20:.2f} MiB from {info['source']} "
              f"(epoch {info['epoch']}); on {diff['faces']} faces max |diff| continuous "
              f"{diff['max_abs_cont']:.2e}, probabilities {diff['max_abs_prob']:.2e}, logits "
              f"{diff['max_abs_logit']:.2e}; decoded options identical: "
              f"{diff['options_identical']}"
              + "".join(f"; face {c['face']} {c['param']} changed (float32 top-two margin "
                        f"{c['margin']:.1e})" for c in diff["changed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
