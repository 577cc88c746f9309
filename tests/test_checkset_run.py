"""`swiftavatar.checkset.run.check_photos`, the core that `check-photos` and the main job share:
a photo without a face is counted wrong, never fatal, and the files are written."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from swiftavatar.checkset.records import CATEGORIES, FORMAT, SHIPPED_DIR, load_records
from swiftavatar.checkset.run import check_photos, one_line
from swiftavatar.engines.registry import get_engine
from swiftavatar.estimator import EstimatorConfig
from swiftavatar.estimator.checkpoint import make_payload, save_checkpoint
from swiftavatar.estimator.weights import build_estimator
from swiftavatar.face_align import mediapipe_available


@pytest.mark.skipif(not mediapipe_available(), reason="mediapipe is not installed")
def test_a_photo_without_a_face_is_counted_wrong_not_fatal(tmp_path, capfd):
    toon = get_engine("toon").schema
    torch.manual_seed(2)
    net = build_estimator(EstimatorConfig(input_size=32, head_hidden=8, pretrained=None), toon)
    model = tmp_path / "model" / "checkpoint_0000001"
    save_checkpoint(model, make_payload(model=net, optimizer=None, schema=toon, epoch=1, step=1,
                                        run_config={}))
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SHIPPED_DIR / "astronaut.jpg", photos)
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(photos / "wall.png")
    seen = {f: opts[0] for f, opts in CATEGORIES.items()}
    (photos / "records.json").write_text(json.dumps({"format": FORMAT, "photos": {
        "astronaut": {"file": "astronaut.jpg", "seen": seen},
        "wall": {"file": "wall.png", "seen": seen}}}))
    capfd.readouterr()
    done = check_photos(load_records(photos / "records.json"), str(model), None,
                        tmp_path / "out", "mediapipe", size=32, quiet=True)
    assert capfd.readouterr().err == ""                    # quiet: mediapipe's lines too
    assert done["missing"] == ["wall"] and done["photos"][0]["avatar"] is not None
    assert "no face" in done["photos"][1]["error"]
    assert all(r["of"] == 2 and r["right"] <= 1 for r in done["table"])
    for f in ("sheet", "table", "results"):
        assert (tmp_path / "out" / done["files"][f].rsplit("/", 1)[1]).is_file()
    assert one_line("toon", done["table"]).startswith("check photos toon: skin ")
