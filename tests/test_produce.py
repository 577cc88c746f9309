"""Paired-data production (section 3.2): the inversion actor's logic in-process, the Ray Data
pipeline (exactly once, resume, a dying actor, engine errors, the quality gate, the card) and
the CLI. Tiny generators written with the real checkpoint writer; LPIPS with a random trunk
(`lpips_backbone="random"`, allowed for tests only: fast and needs no weights; the card must
then say so); 2 inversion steps, 2 augmentations."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from actors.inversion_worker import InversionWorker
from actors.produce_stage import ConfigMismatchError, render_job, run_produce_stage
from actors.renderer import EngineRenderer
from engines_for_tests import TARGET
from synthetic import NO_BROKEN, tiny_generator_configs, write_tiny_generators
from swiftavatar import shards
from swiftavatar.cli import main as cli_main
from swiftavatar.production.augment import AugmentConfig
from swiftavatar.production.config import ProduceConfig, produce_inversion
from swiftavatar.production.pairs import read_pairs
from swiftavatar.production.plan import plan_produce
from swiftavatar.production.rows import pairs_schema
from swiftavatar.semantics import BACKGROUND, EYEGLASSES, HAIR

TINY_G, _ = tiny_generator_configs()
A = 2  # augmentations per sample


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> tuple[str, str]:
    return write_tiny_generators(tmp_path_factory.mktemp("gens"))


def small_config(out, ckpts, **kw) -> ProduceConfig:
    base = dict(engine=TARGET, out=str(out), g_avatar=ckpts[0], g_real=ckpts[1], count=6,
                seed=7, shard_size=3, prior=NO_BROKEN,
                inversion=produce_inversion(steps=2, n_mean=64),
                augment=AugmentConfig(num_augmentations=A),
                lpips_backbone="random", lpips_allow_random=True, workers=1, batch_size=2,
                render_batch=4, progress=False)
    return ProduceConfig(**{**base, **kw})


def pair_mtimes(out) -> dict[int, int]:
    fs, base = shards.resolve(str(out))
    found = shards.list_shards(fs, shards.join(base, "pairs"))
    return {k: fs.get_file_info(p).mtime_ns for k, p in found.items()}


def keys(table) -> list[tuple[int, int]]:
    return list(zip(table.column("sample_id").to_pylist(), table.column("aug_index").to_pylist()))


# ---- the worker, in-process ----------------------------------------------------------------
@pytest.fixture(scope="module")
def gated(ckpts, tmp_path_factory):
    """Seed 4, uniform prior: sample 2 of 6 is 'broken'. The worker's rows for the 5 renders,
    computed in this process, and a gate threshold between the 2nd and 3rd smallest loss."""
    config = small_config(tmp_path_factory.mktemp("gated") / "d", ckpts, seed=4, prior=None)
    plan = plan_produce(config)
    renderer = EngineRenderer(render_job(plan))
    rendered, errors = renderer.render_tables(0, 0, 6)
    assert errors.column("sample_id").to_pylist() == [2]
    worker = InversionWorker(plan.job)
    rows = worker(rendered)
    loss0 = np.sort(rows.filter(rows.column("aug_index").to_numpy() == 0)
                    .column("loss_total").to_numpy())
    return config, plan, rendered, rows, float((loss0[1] + loss0[2]) / 2)


def test_worker_makes_one_pair_and_its_augmentations_per_render(gated):
    config, plan, rendered, rows, _ = gated
    n, R, D = rendered.num_rows, 2 + 2 * TINY_G.num_classes, TINY_G.style_dim
    assert rows.schema.equals(pairs_schema(plan.schema, R * D), check_metadata=False)
    assert rows.num_rows == n * (1 + A)
    assert keys(rows) == [(s, a) for s in rendered.column("sample_id").to_pylist()
                          for a in range(1 + A)]
    assert all(rows.column("kept").to_pylist())  # no gate configured
    lat = np.asarray(rows.column("latent").to_pylist(), np.float32).reshape(-1, 1 + A, R, D)
    # Eq. 7: only background, hair and eyeglasses codes move; base and other parts stay
    parts = {BACKGROUND, HAIR, EYEGLASSES}
    moved = {r for r in range(R) if not np.array_equal(lat[:, 0, r], lat[:, 1, r])}
    assert moved == {2 + 2 * k + j for k in parts for j in (0, 1)}
    # the pair's own row: render, reconstruction and realistic face are 32 px RGB
    for col in ("avatar_png", "reconstruction_png", "realistic_png"):
        assert shards.decode_png(rows.column(col)[0].as_py()).shape == (32, 32, 3)
    assert rows.column("avatar_png")[0].as_py() == rendered.column("image_png")[0].as_py()
    real = rows.column("realistic_png").to_pylist()
    assert real[0] != real[1] != real[2]  # augmentations change the realistic face
    loss = rows.column("loss_total").to_numpy().reshape(-1, 1 + A)
    assert np.all(loss == loss[:, :1]) and np.all(np.isfinite(loss)) and np.all(loss > 0)


def test_rows_carry_both_sides_masks_and_the_inversion_terms_follow_the_engine(gated, ckpts,
                                                                              tmp_path):
    config, plan, rendered, rows, _ = gated
    assert plan.job.inversion.lambda_s == 0.1 and plan.job.inversion.lambda_c == 1.0
    assert plan.manifest["dataset"]["inversion"]["lambda_s"] == 0.1
    engine_mask = rendered.column("mask_png")[0].as_py()
    assert rows.column("avatar_mask_png")[0].as_py() == engine_mask        # the engine's own
    real = shards.decode_png(rows.column("realistic_mask_png")[0].as_py())
    assert real.shape == (32, 32) and real.max() < 13                       # G_real's classes
    # an engine without masks: no segmentation term; the avatar side is G_avatar's own
    maskless = small_config(tmp_path / "m", ckpts, seed=4, prior=None,
                            engine_options={"masks": False})
    plan2 = plan_produce(maskless)
    assert plan2.job.inversion.lambda_s == 0.0
    rendered2, _ = EngineRenderer(render_job(plan2)).render_tables(0, 0, 2)
    rows2 = InversionWorker(plan2.job)(rendered2)
    assert shards.decode_png(rows2.column("avatar_mask_png")[0].as_py()).shape == (32, 32)
    with pytest.raises(ValueError, match="needs an engine that renders masks"):
        plan_produce(dataclasses.replace(
            maskless, inversion=dataclasses.replace(maskless.inversion, lambda_s=0.5)))


def test_worker_gate_marks_pairs_above_the_threshold(gated):
    config, plan, rendered, _, threshold = gated
    worker = InversionWorker(dataclasses.replace(plan.job, max_loss=threshold))
    rows = worker(rendered)
    kept = np.asarray(rows.column("kept").to_pylist())
    loss = rows.column("loss_total").to_numpy()
    assert np.array_equal(kept, loss <= threshold) and 0 < kept.sum() < len(kept)


# ---- the Ray pipeline ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(ray_local, ckpts, tmp_path_factory):
    config = small_config(tmp_path_factory.mktemp("produce") / "ref", ckpts, workers=2)
    return config, run_produce_stage(config)


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_every_row_exactly_once_card_figure_and_rerun_writes_nothing(reference, ray_local):
    config, card = reference
    out = Path(config.out)
    table = read_pairs(config.out)
    assert keys(table) == [(s, a) for s in range(6) for a in range(1 + A)]
    assert table.num_rows == 6 * (1 + A)
    assert sorted(pair_mtimes(out)) == [0, 1]
    c = card["counts"]
    assert (c["pairs_written"], c["samples_kept"], c["dropped_by_gate"], c["engine_errors"]) \
        == (18, 6, 0, 0)
    assert card["complete"] and card["lpips"]["backbone"] == "random"
    assert "not a perceptual metric" in card["lpips"]["note"]
    assert card["generators"]["avatar"]["step"] == 20 and card["generators"]["real"]["step"] == 30
    assert card["w_init"]["kind"] == "w_tilde" and card["w_init"]["n_mean"] == 64
    assert card["engine_schema"]["engine"] == "squares" and card["config"]["inversion"]["steps"] == 2
    corr = card["correspondence"]
    assert corr["pairs"] == 6 and corr["avatar_masks"] == "engine"
    assert set(corr["report"]["regions"]) >= {"hair", "skin", "hat", "glasses"}
    assert json.loads((out / "dataset_card.json").read_text())["counts"] == c
    sheet = shards.decode_png((out / "figure5.png").read_bytes())
    assert sheet.shape == (2 + 6 * 34, 2 + 6 * 34, 3)  # 6 samples x (3 + 3) tiles of 32 px
    meta = pq.read_schema(out / "pairs" / "part-00000.parquet").metadata
    assert json.loads(meta[shards.SCHEMA_META_KEY])["engine"] == "squares"
    before = pair_mtimes(out)
    again = run_produce_stage(config)
    assert again["this_run"]["shards_written"] == 0 and again["counts"]["pairs_written"] == 18
    assert pair_mtimes(out) == before


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_interrupted_run_is_completed_with_only_the_missing_rows(reference, ray_local, ckpts,
                                                                 tmp_path):
    ref_config, _ = reference
    config = small_config(tmp_path / "d", ckpts, max_shards=1)
    first = run_produce_stage(config)
    assert first["counts"]["pairs_written"] == 3 * (1 + A) and not first["complete"]
    done = pair_mtimes(config.out)
    (tmp_path / "d" / "pairs" / ".part-00001.parquet.tmp-deadbeef").write_bytes(b"torn")
    rest = run_produce_stage(dataclasses.replace(config, max_shards=None, batch_size=3))
    assert rest["this_run"]["shards_written"] == 1 and rest["complete"]
    after = pair_mtimes(config.out)
    assert {k: after[k] for k in done} == done
    assert not list((tmp_path / "d" / "pairs").glob(".*"))
    got, want = read_pairs(config.out), read_pairs(ref_config.out)
    assert keys(got) == keys(want)
    # other batch size, other actor: the same codes up to float noise
    np.testing.assert_allclose(np.asarray(got.column("latent").to_pylist()),
                               np.asarray(want.column("latent").to_pylist()), atol=1e-4)
    with pytest.raises(ConfigMismatchError, match="augment"):
        run_produce_stage(dataclasses.replace(config, augment=AugmentConfig(num_augmentations=3)))


@pytest.mark.ray
@pytest.mark.timeout(90)
def test_damaged_shards_of_a_finished_dataset_are_redone_and_named(reference, ray_local,
                                                                   tmp_path, capsys):
    import shutil

    ref_config, _ = reference
    copy = tmp_path / "copy"
    shutil.copytree(ref_config.out, copy)
    short = pq.read_table(copy / "pairs" / "part-00000.parquet").slice(0, 4)
    pq.write_table(short, copy / "pairs" / "part-00000.parquet")      # 4 rows of 3 * (1 + A)
    part = copy / "pairs" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[:300])                         # truncated: no footer
    card = run_produce_stage(dataclasses.replace(ref_config, out=str(copy)))
    err = capsys.readouterr().err
    assert "pairs/part-00000.parquet" in err and f"4 rows, expected {3 * (1 + A)}" in err
    assert "pairs/part-00001.parquet" in err and "magic bytes" in err
    assert card["this_run"]["shards_written"] == 2 and card["complete"]
    assert sorted(p.name for p in (copy / "corrupt" / "pairs").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet"]
    got, want = read_pairs(str(copy)), read_pairs(ref_config.out)
    assert keys(got) == keys(want) and card["counts"]["pairs_written"] == 18
    np.testing.assert_allclose(np.asarray(got.column("latent").to_pylist()),
                               np.asarray(want.column("latent").to_pylist()), atol=1e-4)


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_an_inversion_actor_that_dies_loses_and_duplicates_nothing(ray_local, ckpts,
                                                                   tmp_path):
    marker = tmp_path / "died-once"
    config = small_config(tmp_path / "d", ckpts, fail_once_marker=str(marker))
    card = run_produce_stage(config)
    assert marker.exists()  # an actor really did kill itself mid-run
    table = read_pairs(config.out)
    assert keys(table) == [(s, a) for s in range(6) for a in range(1 + A)]
    assert card["complete"] and card["counts"]["pairs_written"] == 18


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_bad_vector_goes_to_errors_and_the_gate_drops_and_counts(gated, ray_local, tmp_path):
    config, _, _, ref_rows, threshold = gated
    config = dataclasses.replace(config, out=str(tmp_path / "d"), max_loss=threshold)
    card = run_produce_stage(config)
    loss0 = {s: l for s, a, l in zip(ref_rows.column("sample_id").to_pylist(),
                                     ref_rows.column("aug_index").to_pylist(),
                                     ref_rows.column("loss_total").to_pylist()) if a == 0}
    want_dropped = sorted(s for s, l in loss0.items() if l > threshold)
    assert len(want_dropped) == 3
    assert card["dropped_sample_ids"] == want_dropped
    c = card["counts"]
    assert (c["engine_errors"], c["dropped_by_gate"], c["samples_kept"]) == (1, 3, 2)
    kept = read_pairs(config.out)
    assert sorted(set(kept.column("sample_id").to_pylist())) == sorted(
        set(loss0) - set(want_dropped))
    assert all(v <= threshold for v in kept.column("loss_total").to_pylist())
    dropped = read_pairs(config.out, dropped=True)
    assert sorted(set(dropped.column("sample_id").to_pylist())) == want_dropped
    assert not any(dropped.column("kept").to_pylist()) and dropped.num_rows == 3 * (1 + A)
    errs = pq.read_table(Path(config.out) / "errors" / "part-00000.parquet")
    assert errs.column("sample_id").to_pylist() == [2]
    assert errs.column("error")[0].as_py().startswith("EngineError: shape 'broken'")


# ---- CLI -------------------------------------------------------------------------------------
def _cli_base(tmp_path, ckpts) -> list[str]:
    return ["produce", "--engine", TARGET, "--count", "4", "--out", str(tmp_path / "o"),
            "--g-avatar", ckpts[0], "--g-real", ckpts[1]]


@pytest.mark.parametrize("flags, words", [
    (["--workers", "0"], "--workers must be >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--augmentations", "0"], "--augmentations must be >= 1"),
    (["--max-loss", "0"], "--max-loss must be > 0"),
    (["--gpus-per-worker", "-1"], "--gpus-per-worker must be >= 0"),
    (["--workers", "2", "--min-workers", "3"], "--min-workers must be in 1..workers"),
    (["--lambda-aug", "hair"], "--lambda-aug takes PART=VALUE"),
    (["--lambda-aug", "tail=0.3"], "--lambda-aug unknown part 'tail'"),
    (["--lambda-aug", "hair=2"], "--lambda-aug lambda for 'hair' must lie in [0, 1]"),
])
def test_cli_bad_flags_name_the_flag(flags, words, tmp_path, ckpts, capsys):
    assert cli_main(_cli_base(tmp_path, ckpts) + flags) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_missing_checkpoint_and_dry_run(tmp_path, ckpts, capsys):
    base = _cli_base(tmp_path, ckpts)
    bad = list(base)
    bad[bad.index("--g-real") + 1] = str(tmp_path / "nope")
    assert cli_main(bad) == 2
    assert "--g-real: no such checkpoint" in capsys.readouterr().err
    assert cli_main(base + ["--steps", "3", "--augmentations", "2", "--lambda-aug", "hair=0.5",
                            "--lpips-backbone", "random", "--n-mean", "32", "--dry-run"]) == 2
    assert "allow_random" in capsys.readouterr().err  # a random trunk is for tests only
    assert not (tmp_path / "o").exists()


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_cli_produces_pairs_from_the_shipped_generators(ray_local, tmp_path, capsys):
    """`swiftavatar produce` end to end on the real toon engine and the shipped generators."""
    out = tmp_path / "pairs"
    args = ["produce", "--engine", "toon", "--count", "3", "--shard-size", "2", "--out",
            str(out), "--g-avatar", "pretrained:g_avatar_toon_64", "--g-real",
            "pretrained:g_real_64", "--prior", "suggested", "--steps", "2", "--augmentations",
            "1", "--n-mean", "64", "--workers", "1", "--batch-size", "2", "--no-progress"]
    assert cli_main(args) == 0, capsys.readouterr().err
    table = read_pairs(str(out))
    assert keys(table) == [(i, a) for i in range(3) for a in range(2)]
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["complete"] and card["counts"]["pairs_written"] == 6
    assert card["generators"]["avatar"]["path"].endswith("g_avatar_toon_64.pt")
    assert card["generators"]["real"]["step"] > 1000
    assert (out / "figure5.png").stat().st_size > 1000
    assert cli_main(args) == 0                       # a re-run finds everything done
    assert keys(read_pairs(str(out))) == keys(table)
