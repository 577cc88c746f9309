"""What a person sees in each photo of a check set, written by hand, and the photos it names.

A records file is JSON: {"format": FORMAT, "photos": {photo id: record}}; a record has "file"
(relative to the photo folder), "seen" ({field: category or null when it cannot be told,
e.g. the hair colour of a bald head}, every field of CATEGORIES), and optionally "sha256" (of
the file's bytes, checked when given), "source", "licence" and "note". Every image in the
folder must have a record and every record its image, so no photo is scored against another
photo's record.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

FORMAT = "swiftavatar-checkset/1"
SHIPPED_DIR = Path(__file__).parent / "photos"            # the shipped set and its records
SHIPPED_RECORDS = SHIPPED_DIR / "records.json"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

# field -> the categories a record may give it (in the order tables list them)
CATEGORIES: dict[str, tuple[str, ...]] = {
    "skin_tone": ("light", "medium", "dark"),
    "hair_colour": ("dark", "light", "grey-white", "red"),
    "hair_length": ("bald", "short", "medium", "long"),
    "glasses": ("yes", "no"),
    "facial_hair": ("yes", "no"),
    "headwear": ("yes", "no"),
}
_OPTIONAL = ("sha256", "source", "licence", "note")


class RecordError(ValueError):
    """A records file or photo folder the user can fix (printed as one line, exit code 2)."""


@dataclass(frozen=True)
class PhotoRecord:
    photo_id: str
    path: Path                       # the image file
    seen: dict[str, str | None]      # field -> category, None where it cannot be told
    sha256: str | None = None
    source: str = ""
    licence: str = ""


def load_records(records: str | Path = SHIPPED_RECORDS,
                 photos: str | Path | None = None) -> list[PhotoRecord]:
    """The records of `records` with their photos in `photos` (default: the records file's
    folder), sorted by photo id; RecordError naming the first problem."""
    records = Path(records)
    folder = Path(photos) if photos is not None else records.parent
    try:
        data = json.loads(records.read_text())
    except FileNotFoundError:
        raise RecordError(f"records file {records} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordError(f"{records}: not a readable JSON records file ({err})") from None
    if not isinstance(data, Mapping) or data.get("format") != FORMAT \
            or not isinstance(data.get("photos"), Mapping) or not data["photos"]:
        raise RecordError(f"{records}: expected a JSON object with \"format\": \"{FORMAT}\" "
                          f"and a non-empty \"photos\" object of photo id: record")
    out = [_record(records, folder, pid, rec) for pid, rec in sorted(data["photos"].items())]
    _check_folder(folder, out)
    return out


def _record(where: Path, folder: Path, pid: str, rec: Any) -> PhotoRecord:
    def bad(what: str) -> RecordError:
        return RecordError(f"{where}: photo {pid!r}: {what}")

    if not isinstance(rec, Mapping):
        raise bad("the record must be a JSON object with \"file\" and \"seen\"")
    unknown = sorted(set(rec) - {"file", "seen", *_OPTIONAL})
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; a record has file, seen, "
                  f"{', '.join(_OPTIONAL)}")
    file, seen = rec.get("file"), rec.get("seen")
    if not isinstance(file, str) or not file or Path(file).is_absolute() or ".." in Path(file).parts:
        raise bad("\"file\" must name the image, relative to the photo folder")
    if not isinstance(seen, Mapping):
        raise bad(f"\"seen\" must be an object with the fields {', '.join(CATEGORIES)}")
    for field in seen:
        if field not in CATEGORIES:
            raise bad(f"unknown field {field!r} in \"seen\"; the fields are "
                      f"{', '.join(CATEGORIES)}")
    for field, allowed in CATEGORIES.items():
        if field not in seen:
            raise bad(f"\"seen\" lacks {field!r} (one of {', '.join(allowed)}, or null when "
                      f"it cannot be told)")
        if seen[field] is not None and seen[field] not in allowed:
            raise bad(f"{field} {seen[field]!r} is not one of {', '.join(allowed)} (or null)")
    path = folder / file
    if not path.is_file():
        raise bad(f"its file {file} is not in {folder}")
    digest = rec.get("sha256")
    if digest is not None and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise bad(f"{path} does not match the record's sha256: it is not the photo the "
                  f"record describes (fix the record or put the right photo back)")
    return PhotoRecord(pid, path, dict(seen), digest, str(rec.get("source", "")),
                       str(rec.get("licence", "")))


def _check_folder(folder: Path, records: list[PhotoRecord]) -> None:
    named = {r.path.resolve() for r in records}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.resolve() not in named:
            raise RecordError(f"photo {p} has no record: add one for it to the records file "
                              f"(or move the photo out of {folder})")


__all__ = ["CATEGORIES", "FORMAT", "PhotoRecord", "RecordError", "SHIPPED_DIR",
           "SHIPPED_RECORDS", "load_records"]
