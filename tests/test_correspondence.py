"""The dual-domain correspondence report on hand-made images and masks, and on generators."""
from __future__ import annotations

import numpy as np
import pytest

from swiftavatar.evaluation.correspondence import (CorrespondenceReport, correspondence,
                                                   facial_hair_present, generator_pairs,
                                                   presence)
from swiftavatar.evaluation.designer import srgb_to_lab
from swiftavatar.semantics import BACKGROUND, EYEGLASSES, HAIR, HAT, SKIN

S = 32


def face(skin=(220, 180, 150), hair=(40, 30, 20), hat=None, glasses=False, beard=None,
         bg=(100, 150, 200), hair_rows=8):
    """A 32-px aligned 'face': background, a skin oval-ish block, hair on top, optional hat,
    glasses band at the eye line and a beard colour on chin and upper lip."""
    img = np.zeros((S, S, 3), np.uint8)
    m = np.full((S, S), BACKGROUND, np.uint8)
    img[:] = bg
    m[6:28, 8:24], img[6:28, 8:24] = SKIN, skin
    m[2:2 + hair_rows, 6:26], img[2:2 + hair_rows, 6:26] = HAIR, hair
    if hat is not None:
        m[0:5, 6:26], img[0:5, 6:26] = HAT, hat
    if glasses:
        m[13:15, 9:23], img[13:15, 9:23] = EYEGLASSES, (20, 20, 20)
    if beard is not None:
        img[18:25, 12:20] = beard                   # labelled skin, as CelebAMask-HQ does
    return img, m


def stack(items):
    imgs, masks = zip(*items)
    return np.stack(imgs), np.stack(masks)


def test_identical_sides_agree_everywhere():
    a = stack([face(), face(hat=(200, 0, 0), glasses=True), face(beard=(30, 20, 10))])
    rep = correspondence(*a, *a)
    assert rep.n == 3
    assert rep.regions["hair"].delta_e == pytest.approx(0.0, abs=1e-9)
    assert rep.regions["hair"].iou == pytest.approx(1.0)
    assert rep.mean_iou == pytest.approx(1.0)
    for name in ("glasses", "hat", "facial_hair"):
        assert rep.presence[name].agreement == 1.0
        assert rep.presence[name].carried == 1.0
    assert rep.presence["hat"].a_rate == pytest.approx(1 / 3)


def test_colour_distance_is_cielab_and_absent_regions_are_not_scored():
    a = stack([face(hair=(40, 30, 20)), face(hat=(200, 0, 0))])
    b = stack([face(hair=(200, 160, 60)), face()])
    rep = correspondence(*a, *b)
    want = np.linalg.norm(srgb_to_lab([40, 30, 20]) - srgb_to_lab([200, 160, 60]))
    # pair 0: the hair colours differ by `want`; pair 1: A's hat covers part of its hair, the
    # rest has B's colour (Delta E 0): the mean over the two pairs
    assert rep.regions["hair"].n_both == 2
    assert rep.regions["hair"].delta_e == pytest.approx(want / 2)
    assert rep.regions["hat"].n_both == 0 and rep.regions["hat"].delta_e is None
    assert rep.regions["hat"].iou == pytest.approx(0.0)     # shown on one side only
    assert rep.presence["hat"].carried == 0.0 and rep.presence["hat"].agreement == 0.5
    assert rep.regions["skin"].delta_e == pytest.approx(0.0, abs=1e-9)


def test_mask_iou_follows_the_layout():
    a = stack([face(hair_rows=8)])
    b = stack([face(hair_rows=4)])
    rep = correspondence(*a, *b)
    # hair rows 2..9 against 2..5 (and the skin below takes rows 6..9 on side B)
    assert rep.regions["hair"].iou == pytest.approx(4 / 8)


def test_facial_hair_reads_colour_not_labels():
    imgs, masks = stack([face(), face(beard=(40, 25, 15)), face(beard=(215, 178, 148))])
    got = facial_hair_present(imgs, masks)
    assert got.tolist() == [False, True, False]      # a near-skin 'beard' is not seen
    assert presence(imgs, masks)["facial_hair"].tolist() == [False, True, False]


def test_sizes_may_differ_and_bad_input_is_named():
    a = stack([face()])
    big = (np.repeat(np.repeat(a[0], 2, 1), 2, 2), np.repeat(np.repeat(a[1], 2, 1), 2, 2))
    rep = correspondence(*big, *a)
    assert rep.mean_iou == pytest.approx(1.0)
    with pytest.raises(ValueError, match="side B: masks"):
        correspondence(*a, a[0], a[1][:, :4])
    with pytest.raises(ValueError, match="same number"):
        correspondence(*a, *stack([face(), face()]))


def test_report_round_trips_and_prints():
    a = stack([face(hat=(200, 0, 0)), face(glasses=True)])
    rep = correspondence(*a, *a)
    again = CorrespondenceReport.from_dict(rep.to_dict())
    assert again == rep
    text = rep.table()
    assert "hat" in text and "mean IoU 1.000" in text


def test_generator_pairs_of_one_generator_correspond_perfectly():
    import torch

    from swiftavatar.models import SemanticGenerator
    from tests.synthetic import tiny_generator_configs

    torch.manual_seed(0)
    g = SemanticGenerator(tiny_generator_configs()[0]).eval()
    imgs_a, masks_a, imgs_b, masks_b = generator_pairs(g, g, 6, seed=3, batch_size=4)
    assert imgs_a.shape == (6, 32, 32, 3) and masks_a.shape == (6, 32, 32)
    np.testing.assert_array_equal(imgs_a, imgs_b)
    rep = correspondence(imgs_a, masks_a, imgs_b, masks_b)
    assert rep.mean_iou == pytest.approx(1.0)


@pytest.mark.slow
def test_cli_reports_pairs_and_generators_and_names_bad_flags(tmp_path, capsys):
    import json

    from swiftavatar.cli import main as cli_main
    from synthetic import write_tiny_generators, write_toon_pairs

    pairs = write_toon_pairs(tmp_path / "pairs", n=4, shard_size=4, aug=1)
    assert cli_main(["correspondence", "--pairs", str(pairs), "--json",
                     str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "correspondence over 4 pairs" in out
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["report"]["n"] == 4 and saved["source"] == {"pairs": str(pairs)}
    # the stand-in faces are the renders with the same masks: the layouts agree exactly
    assert saved["report"]["mean_iou"] == pytest.approx(1.0)
    avatar, real = write_tiny_generators(tmp_path / "gens")
    assert cli_main(["correspondence", "--g-avatar", avatar, "--g-real", real, "--n", "6"]) == 0
    assert "correspondence over 6 pairs" in capsys.readouterr().out
    for flags, words in ((["--pairs", str(pairs), "--g-real", real], "either --pairs"),
                         (["--g-avatar", avatar], "go together"),
                         (["--pairs", str(tmp_path)], "--pairs:"),
                         (["--g-avatar", str(tmp_path / "nope"), "--g-real", real],
                          "--g-avatar:"),
                         (["--pairs", str(pairs), "--n", "0"], "--n must be")):
        assert cli_main(["correspondence", *flags]) == 2
        assert words in capsys.readouterr().err
