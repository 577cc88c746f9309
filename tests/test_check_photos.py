"""The real-photo check set and `swiftavatar check-photos`: records, reading, scoring, refusals."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from swiftavatar.checkset.reading import OPTION_CATEGORIES, read_avatars
from swiftavatar.checkset.records import (CATEGORIES, SHIPPED_DIR, SHIPPED_RECORDS, RecordError,
                                          load_records)
from swiftavatar.cli import main as cli_main
from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator import EstimatorConfig
from swiftavatar.estimator.checkpoint import make_payload, save_checkpoint
from swiftavatar.estimator.weights import build_estimator


@pytest.fixture(scope="module")
def tiny_toon_model(tmp_path_factory) -> Path:
    """An untrained 32-px toon estimator: the check must run and score whatever it answers."""
    toon = get_engine("toon").schema
    torch.manual_seed(1)
    net = build_estimator(EstimatorConfig(input_size=32, head_hidden=8, pretrained=None), toon)
    where = tmp_path_factory.mktemp("check_model") / "checkpoint_0000001"
    save_checkpoint(where, make_payload(model=net, optimizer=None, schema=toon, epoch=1,
                                        step=1, run_config={}))
    return where


@pytest.fixture()
def own_set(tmp_path) -> tuple[Path, Path, dict]:
    """A copy of the shipped photos and records in a folder of the user's own."""
    photos = tmp_path / "mine"
    shutil.copytree(SHIPPED_DIR, photos)
    records = photos / "records.json"
    return photos, records, json.loads(records.read_text())


# the shipped check set, in the order the records load
SHIPPED_IDS = ["astronaut", "biden", "grace_hopper", "luispedro", "obama", "obama_speech"]


def test_shipped_records_load_and_every_photo_matches_its_sha256():
    recs = load_records()
    assert [r.photo_id for r in recs] == SHIPPED_IDS
    raw = json.loads(SHIPPED_RECORDS.read_text())["photos"]
    for r in recs:
        assert hashlib.sha256(r.path.read_bytes()).hexdigest() == raw[r.photo_id]["sha256"]
        assert r.source and ("public domain" in r.licence or r.licence.startswith("MIT"))
        assert set(r.seen) == set(CATEGORIES)
        assert max(Image.open(r.path).size) <= 512


def test_check_photos_on_the_shipped_set_counts_what_its_json_shows(tiny_toon_model, tmp_path,
                                                                     capsys):
    out = tmp_path / "check"
    rc = cli_main(["check-photos", "--model", str(tiny_toon_model), "--align", "none",
                   "--size", "48", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    result = json.loads((out / "check_photos.json").read_text())
    photos = result["photos"]
    assert [p["id"] for p in photos] == SHIPPED_IDS
    # the avatar's reading is that of the predicted vector
    toon = get_engine("toon").schema
    from swiftavatar.engines.vectors import VectorBatch
    again = read_avatars(VectorBatch.stack([toon.vector(p["vector"]) for p in photos]))
    assert [p["avatar"] for p in photos] == again
    # the table by hand from the per-photo JSON
    for row in result["table"]:
        f = row["attribute"]
        told = [p for p in photos if p["seen"][f] is not None]
        assert row["of"] == len(told) >= len(photos) - 1
        assert row["right"] == sum(p["avatar"][f] == p["seen"][f] for p in told)
        assert f"{f:<12} {row['right']:>5} {row['of']:>4}" in cap.out
    assert [r["attribute"] for r in result["table"]] == list(CATEGORIES)
    assert (out / "table.txt").read_text() in cap.out + "\n"
    sheet = Image.open(out / "sheet.png")
    assert sheet.size[1] > 6 * 150 and sheet.size[0] > 4 * 150      # 6 rows of 4 tiles
    for p in photos:
        assert Path(p["render"]).is_file() and Path(p["input"]).is_file()


def test_a_photo_without_a_record_is_refused_by_name(own_set, tiny_toon_model, tmp_path,
                                                     capsys):
    photos, records, _ = own_set
    Image.new("RGB", (64, 64), (200, 150, 120)).save(photos / "stranger.png")
    out = tmp_path / "check"
    rc = cli_main(["check-photos", "--model", str(tiny_toon_model), "--align", "none",
                   "--photos", str(photos), "--records", str(records), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "stranger.png has no record" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("edit, words", [
    (lambda rec: rec["seen"].update(skin_tone="beige"), "skin_tone 'beige' is not one of"),
    (lambda rec: rec["seen"].update(hair_colour="blue"), "hair_colour 'blue' is not one of"),
    (lambda rec: rec["seen"].update(eye_colour="blue"), "unknown field 'eye_colour'"),
    (lambda rec: rec["seen"].pop("glasses"), "lacks 'glasses'"),
    (lambda rec: rec.update(sha256="0" * 64), "does not match the record's sha256"),
])
def test_a_bad_record_is_refused_naming_the_field(own_set, tiny_toon_model, tmp_path, capsys,
                                                  edit, words):
    photos, records, data = own_set
    edit(data["photos"]["grace_hopper"])
    records.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="photo 'grace_hopper'"):
        load_records(records)
    rc = cli_main(["check-photos", "--model", str(tiny_toon_model), "--align", "none",
                   "--photos", str(photos), "--records", str(records),
                   "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and "grace_hopper" in err


def test_photos_and_records_go_together(tiny_toon_model, tmp_path, capsys):
    assert cli_main(["check-photos", "--model", str(tiny_toon_model), "--photos",
                     str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "--records must be given together with --photos" in capsys.readouterr().err


def test_avatar_readings_in_record_categories():
    toon = get_engine("toon").schema
    vecs = [toon.vector({"skin_tone": "deep", "hair_color": "ginger",
                         "hair_style": "long_wavy", "glasses": "round",
                         "facial_hair": "none", "headwear": "beanie"}, fill_defaults=True),
            toon.vector({"skin_tone": "olive", "hair_color": "blue", "hair_style": "bald",
                         "glasses": "none", "facial_hair": "goatee", "headwear": "none"},
                        fill_defaults=True)]
    from swiftavatar.engines.vectors import VectorBatch
    assert read_avatars(VectorBatch.stack(vecs)) == [
        {"skin_tone": "dark", "hair_colour": "red", "hair_length": "long", "glasses": "yes",
         "facial_hair": "no", "headwear": "yes"},
        {"skin_tone": "medium", "hair_colour": "none", "hair_length": "bald", "glasses": "no",
         "facial_hair": "yes", "headwear": "no"}]


@pytest.mark.parametrize("engine, param, field, outside", [
    ("toon", "skin_tone", "skin_tone", set()),
    ("toon", "hair_style", "hair_length", set()),
    ("toon", "hair_color", "hair_colour", {"blue", "pink", "purple"}),
    ("avataaars", "skin_color", "skin_tone", set()),
    ("avataaars", "hair_color", "hair_colour", {"pastel_pink"}),
    ("avataaars", "top", "hair_length", None),          # None: the hats only
])
def test_every_engine_option_has_a_category(engine, param, field, outside):
    (p,) = [p for p in get_engine(engine).schema.discrete if p.name == param]
    table = OPTION_CATEGORIES[engine][field]
    left = {o for o in p.options if o not in table}
    if outside is None:
        outside = {o for o in p.options if o.startswith("hat") or o == "astronaut"}
    assert left == outside
    assert set(table.values()) <= set(CATEGORIES[field])


def test_score_counts_an_unanswered_photo_as_wrong_and_leaves_out_what_cannot_be_told():
    from swiftavatar.checkset.score import format_table, score

    seen = [{"skin_tone": "dark", "hair_colour": None},
            {"skin_tone": "light", "hair_colour": "red"},
            {"skin_tone": "light", "hair_colour": "dark"}]
    avatar = [{"skin_tone": "dark", "hair_colour": "none"}, None,
              {"skin_tone": "medium", "hair_colour": "dark"}]
    table = score(seen, avatar, ["hair_colour", "skin_tone"])
    assert table == [{"attribute": "skin_tone", "right": 1, "of": 3, "percent": 33.3},
                     {"attribute": "hair_colour", "right": 1, "of": 2, "percent": 50.0}]
    assert format_table(table).splitlines()[1].split() == ["skin_tone", "1", "3", "33.3"]
