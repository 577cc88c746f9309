"""`swiftavatar check-photos --model CKPT --out DIR`: real photos -> avatars, scored per attribute
against what a person sees in each photo (the check set, swiftavatar/checkset/).

It runs `predict` on the photos (swiftavatar.checkset.run; OUT/predict/ holds its files),
reads the avatar's skin tone, hair colour and length, glasses, facial hair and headwear back
from each predicted vector, prints per attribute how many photos the avatar gets right, and
writes OUT/check_photos.json, OUT/table.txt and OUT/sheet.png (photo | crop | avatar | record
and reading per row).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, config_from_args
from swiftavatar.cli.predict_cmd import PredictConfig
from swiftavatar.config import StageConfig, option

# the predict options check-photos passes on, in the order its help lists them
PREDICT_FLAGS = ("model", "engine", "align", "min_face_confidence", "size", "device")


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
    from swiftavatar.checkset.run import CheckSetError, check_photos
    from swiftavatar.estimator.checkpoint import EstimatorCheckpointError

    if cfg.photos is not None and not Path(cfg.photos).is_dir():
        raise CliError(f"--photos: {cfg.photos} is not a folder")
    try:
        records = (load_records(cfg.records, cfg.photos) if cfg.photos is not None
                   else load_records())
    except RecordError as err:
        raise CliError(f"{'--records' if cfg.photos else 'the shipped check set'}: {err}") \
            from None
    try:
        done = check_photos(records, args.model, args.engine, cfg.out, args.align,
                            size=args.size, device=args.device,
                            min_face_confidence=args.min_face_confidence,
                            records_name=str(cfg.records) if cfg.photos else "shipped")
    except (EstimatorCheckpointError, FileNotFoundError, CheckSetError) as err:
        raise CliError(f"--model: {err}") from None
    print(done["text"])
    missing, n = done["missing"], len(done["photos"])
    print(f"swiftavatar check-photos: {n - len(missing)} of {n} photos answered"
          f"{' (no face: ' + ', '.join(missing) + ')' if missing else ''} -> {cfg.out}",
          file=sys.stderr)
    return 1 if missing else 0
