"""The rendering stage: shard files, the actor's logic, the Ray pipeline and the CLI."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actors.render_stage import (ConfigMismatchError, RenderConfig, RenderStageError,
                                 plan_render, prepare_output, run_render_stage)
from actors.renderer import EngineRenderer, RenderJob
from conftest import subprocess_env
from engines_for_tests import TARGET, SquaresEngine
from swiftavatar import shards
from swiftavatar.cli import main as cli_main
from swiftavatar.engines.registry import EngineSpec
from swiftavatar.engines.schema import Prior

NO_BROKEN = {"discrete_weights": {"shape": {"broken": 0.0}}}


def small_config(out, **kw) -> RenderConfig:
    base = dict(engine=TARGET, out=str(out), count=20, seed=7, size=32, shard_size=6,
                prior=NO_BROKEN, workers=2, render_batch=4, progress=False)
    return RenderConfig(**{**base, **kw})


def shard_mtimes(out) -> dict[int, int]:
    fs, base = shards.resolve(str(out))
    found = shards.list_shards(fs, shards.join(base, shards.SHARD_DIR))
    return {k: fs.get_file_info(p).mtime_ns for k, p in found.items()}


# ---- shards.py, no Ray ---------------------------------------------------------------------
def test_png_round_trip_is_exact_and_deterministic():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)  # (H, W, 3)
    mask = rng.integers(0, 13, (9, 7), dtype=np.uint8)  # (H, W)
    assert shards.encode_png(rgb) == shards.encode_png(rgb.copy())
    np.testing.assert_array_equal(shards.decode_png(shards.encode_png(rgb)), rgb)
    np.testing.assert_array_equal(shards.decode_png(shards.encode_png(mask)), mask)


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    fs, base = shards.resolve(str(tmp_path))
    path = shards.join(base, "shards", shards.shard_name(3))
    table = pa.table({"x": pa.array([1, 2])})
    (tmp_path / "shards" / "part-00003.parquet").mkdir(parents=True)  # the rename must fail
    (tmp_path / "shards" / "part-00003.parquet" / "f").write_text("x")
    with pytest.raises(OSError):
        shards.write_table_atomic(fs, path, table)
    assert [p.name for p in (tmp_path / "shards").iterdir()] == ["part-00003.parquet"]
    (tmp_path / "shards" / "part-00003.parquet" / "f").unlink()
    (tmp_path / "shards" / "part-00003.parquet").rmdir()
    shards.write_table_atomic(fs, path, table)
    (tmp_path / "shards" / ".part-00004.parquet.tmp-0123").write_bytes(b"half")
    (tmp_path / "shards" / "notes.txt").write_text("x")
    assert shards.list_shards(fs, shards.join(base, "shards")) == {3: path}
    assert shards.remove_temporaries(fs, shards.join(base, "shards")) == 1
    assert pq.read_table(path).column("x").to_pylist() == [1, 2]


def test_reading_a_directory_that_is_not_a_dataset_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a rendered dataset"):
        shards.RenderedDataset(str(tmp_path))


# ---- the actor's logic, called directly (no Ray) -----------------------------------------
def _job(out, engine, **kw):
    base = dict(engine=EngineSpec(TARGET), out=str(out), seed=7, size=16, render_batch=4,
                schema_fingerprint=engine.schema.fingerprint)
    return RenderJob(**{**base, **kw})


def test_renderer_isolates_failing_rows_and_never_rewrites_a_shard(tmp_path, squares_engine):
    renderer = EngineRenderer(_job(tmp_path, squares_engine))
    ids = np.arange(0, 12)
    vectors = squares_engine.schema.sample(7, ids)  # uniform prior: some are "broken"
    broken = set(ids[vectors.discrete[:, 0] == 2].tolist())
    assert 0 < len(broken) < 12, "seed 7 should give some broken and some good vectors"
    res = renderer.render_shard(0, 0, 12)
    assert (res["status"], res["rows"], res["errors"]) == ("written", 12 - len(broken),
                                                           len(broken))
    errs = pq.read_table(tmp_path / "errors" / "part-00000.parquet")
    assert set(errs.column("sample_id").to_pylist()) == broken
    assert all("broken" in m for m in errs.column("error").to_pylist())
    # 3 sub-batches of 4, plus one single-vector retry per row of each failing sub-batch
    failing = {i // 4 for i in broken}
    assert renderer.engine.calls == 3 + 4 * len(failing)
    path = tmp_path / "shards" / "part-00000.parquet"
    before = path.stat().st_mtime_ns
    again = renderer.render_shard(0, 0, 12)
    assert again["status"] == "skipped" and again["rows"] == 12 - len(broken)
    assert path.stat().st_mtime_ns == before


def test_rerendered_shard_drops_the_errors_file_of_an_earlier_attempt(tmp_path, squares_engine):
    """An attempt that wrote shard 0's errors file and stopped before the shard file; the
    re-render renders every row: no sample may be both a row and an error."""
    job = _job(tmp_path, squares_engine, prior=NO_BROKEN)
    stale = shards.errors_table(squares_engine.schema, 7, [shards.ErrorRow(2, "render", "flaky")])
    fs, base = shards.resolve(str(tmp_path))
    shards.write_table_atomic(fs, shards.join(base, "errors", shards.shard_name(0)), stale)
    res = EngineRenderer(job).render_shard(0, 0, 6)
    assert (res["status"], res["rows"], res["errors"]) == ("written", 6, 0)
    assert not (tmp_path / "errors" / "part-00000.parquet").exists()


def test_renderer_stops_on_an_engine_that_is_down(tmp_path, squares_engine):
    """A dead gRPC server fails the shard (the run stops, a re-run continues); its vectors are
    not recorded as errors and nothing of the shard is written."""
    from swiftavatar.engines.grpc_server import serve

    server, port = serve(SquaresEngine())
    try:
        spec = EngineSpec("grpc", {"address": f"127.0.0.1:{port}", "retries": 1})
        job = dataclasses.replace(_job(tmp_path, squares_engine, prior=NO_BROKEN), engine=spec)
        renderer = EngineRenderer(job)
        assert renderer.render_shard(0, 0, 3)["rows"] == 3
    finally:
        server.stop(0).wait()
    # a one-row shard too (the all-rows-failed outage rule needs 2 rows)
    summary = renderer(pa.table({"shard": [1, 2], "start": [3, 6], "stop": [6, 7]})).to_pylist()
    for row in summary:
        assert row["status"] == "failed", row
        assert row["error"].startswith("EngineUnavailableError: gRPC engine at"), row
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == ["part-00000.parquet"]
    renderer.engine.close()


def test_overwrite_replaces_shards_that_have_no_config(tmp_path):
    out = tmp_path / "o"
    (out / "shards").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), out / "shards" / "part-00000.parquet")
    with pytest.raises(ConfigMismatchError, match="holds shards but no render_config.json"):
        prepare_output(plan_render(small_config(out)))
    prepare_output(plan_render(small_config(out, overwrite=True)))
    assert not (out / "shards").exists() and (out / "render_config.json").is_file()


def test_resume_may_move_the_grpc_server_and_change_its_timeouts(tmp_path):
    from swiftavatar.engines.grpc_server import serve

    servers = [serve(SquaresEngine()) for _ in range(2)]
    try:
        first = small_config(tmp_path / "o", engine=f"grpc://127.0.0.1:{servers[0][1]}",
                             engine_options={"timeout_s": 5})
        prepare_output(plan_render(first))
        moved = dataclasses.replace(first, engine=f"grpc://127.0.0.1:{servers[1][1]}",
                                    engine_options={"timeout_s": 60, "batch_size": 8})
        prepare_output(plan_render(moved))  # the same dataset: no ConfigMismatchError
        with pytest.raises(ConfigMismatchError, match="seed 7 -> 8"):
            prepare_output(plan_render(dataclasses.replace(moved, seed=8)))
    finally:
        for server, _ in servers:
            server.stop(0).wait()


def test_vector_file_lines_end_only_at_newlines(tmp_path):
    """U+2028 inside a JSON string is not a line break (str.splitlines would split there);
    CRLF files read like LF ones; a file that is not UTF-8 is named."""
    good = {"hue": 0.5, "scale": 0.5, "offset_x": 0, "shape": "disc", "background": "light"}
    line = json.dumps({**good, "note\u2028x": 1}, ensure_ascii=False)
    assert "\u2028" in line and len(line.splitlines()) == 2
    path = tmp_path / "v.jsonl"
    path.write_bytes(("\r\n".join([json.dumps(good), line, json.dumps(good)]) + "\r\n")
                     .encode("utf-8"))
    plan = plan_render(small_config(tmp_path / "o", vectors=str(path), prior=None))
    assert plan.count == 3 and plan.lines[1] == line and plan.lines[2] == json.dumps(good)
    path.write_bytes(b"\xff\xfe{}\n")
    with pytest.raises(ValueError, match="v.jsonl is not UTF-8"):
        plan_render(small_config(tmp_path / "o", vectors=str(path), prior=None))


def test_renderer_refuses_a_different_engine_version(tmp_path, squares_engine):
    with pytest.raises(Exception, match="install the same engine version"):
        EngineRenderer(_job(tmp_path, squares_engine, schema_fingerprint="0123456789ab"))


# ---- the Ray pipeline ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(ray_local, tmp_path_factory):
    """One finished small dataset: 20 samples in shards of 6 (6, 6, 6, 2)."""
    config = small_config(tmp_path_factory.mktemp("render") / "ref")
    return config, run_render_stage(config)


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_every_sample_exactly_once_and_rerun_writes_nothing(reference, ray_local):
    config, summary = reference
    assert (summary.rendered, summary.errors, summary.shards_done, summary.shards_total) == \
        (20, 0, 4, 4)
    assert summary.complete
    data = shards.RenderedDataset(config.out)
    table = data.table()
    assert table.column("sample_id").to_pylist() == list(range(20))
    for k, n in enumerate((6, 6, 6, 2)):
        ids = pq.read_table(f"{config.out}/shards/part-{k:05d}.parquet").column("sample_id")
        assert sorted(ids.to_pylist()) == list(range(6 * k, 6 * k + n))
    # the stored vectors are the (seed, id) samples, and the images are those vectors' renders
    expected = data.schema.sample(7, np.arange(20), Prior.from_dict(NO_BROKEN))
    np.testing.assert_array_equal(data.vectors().continuous, expected.continuous)
    np.testing.assert_array_equal(data.vectors().discrete, expected.discrete)
    direct = SquaresEngine().render(expected.select([0, 13]), 32)
    for row, i in ((0, 0), (13, 1)):
        np.testing.assert_array_equal(shards.decode_png(table.column("image_png")[row].as_py()),
                                      direct.images[i])
        np.testing.assert_array_equal(shards.decode_png(table.column("mask_png")[row].as_py()),
                                      direct.masks[i])
    assert set(table.column("size").to_pylist()) == {32}
    meta = pq.read_schema(f"{config.out}/shards/part-00000.parquet").metadata
    assert json.loads(meta[shards.SCHEMA_META_KEY])["engine"] == "squares"
    # layout
    manifest = json.loads((Path(config.out) / "render_config.json").read_text())
    assert manifest["dataset"]["count"] == 20 and manifest["schema_fingerprint"] == \
        data.schema.fingerprint
    saved = json.loads((Path(config.out) / "summary.json").read_text())
    assert saved["rendered"] == 20 and saved["complete"] is True
    sheet = shards.decode_png((Path(config.out) / "contact_sheet.png").read_bytes())
    assert sheet.shape == (2 + 3 * 34, 2 + 8 * 34, 3)  # 20 tiles of 32 px, 8 per row, pad 2
    assert not (Path(config.out) / "errors").exists()
    # a re-run adds nothing and touches no shard
    before = shard_mtimes(config.out)
    again = run_render_stage(config)
    assert (again.shards_written, again.shards_skipped, again.rendered) == (0, 4, 20)
    assert shard_mtimes(config.out) == before


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_interrupted_run_is_completed_and_equals_one_shot(reference, ray_local, tmp_path):
    ref_config, _ = reference
    config = small_config(tmp_path / "d", max_shards=2)
    first = run_render_stage(config)
    assert (first.shards_done, first.rendered, first.complete) == (2, 12, False)
    done = shard_mtimes(config.out)
    assert sorted(done) == [0, 1]
    (tmp_path / "d" / "shards" / ".part-00002.parquet.tmp-deadbeef").write_bytes(b"torn")
    # run-level settings may change between runs; the rows may not
    rest = run_render_stage(dataclasses.replace(config, max_shards=None, workers=1,
                                                render_batch=3))
    assert (rest.shards_written, rest.shards_skipped, rest.rendered) == (2, 2, 20)
    after = shard_mtimes(config.out)
    assert {k: after[k] for k in done} == done
    assert not list((tmp_path / "d" / "shards").glob(".*"))
    got = shards.RenderedDataset(config.out).table()
    want = shards.RenderedDataset(ref_config.out).table()
    assert got.column("sample_id").to_pylist() == list(range(20))
    assert got.equals(want)  # same seed, same rows, byte for byte


@pytest.mark.ray
@pytest.mark.timeout(90)
def test_engine_failures_go_to_errors_table_and_the_job_goes_on(ray_local, tmp_path):
    config = small_config(tmp_path / "d", count=18, prior=None, seed=11)  # "broken" sampled
    schema = SquaresEngine().schema
    vectors = schema.sample(11, np.arange(18))
    bad = np.flatnonzero(vectors.discrete[:, 0] == schema.param("shape").options.index("broken"))
    assert 0 < len(bad) < 6, "seed 11 should give a few broken vectors"
    summary = run_render_stage(config)
    assert (summary.rendered, summary.errors, summary.complete) == (18 - len(bad), len(bad), True)
    data = shards.RenderedDataset(config.out)
    assert data.table().column("sample_id").to_pylist() == sorted(set(range(18)) - set(bad))
    errs = data.errors()
    assert errs.column("sample_id").to_pylist() == bad.tolist()
    assert set(errs.column("stage").to_pylist()) == {"render"}
    messages = errs.column("error").to_pylist()
    assert all(m.startswith("EngineError: shape 'broken'") for m in messages)
    np.testing.assert_array_equal(errs.column("c.hue").to_numpy(), vectors.continuous[bad, 0])


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_vector_file_bad_lines_go_to_errors_table(ray_local, tmp_path):
    engine = SquaresEngine(masks=False)
    schema = engine.schema
    good = schema.vector({"hue": 0.3, "scale": 0.6, "offset_x": 0.1, "shape": "disc",
                          "background": "dark"})
    lines = [
        good.to_json(),                                                     # 0 ok
        json.dumps({"hue": 0.9, "scale": 0.3, "offset_x": 0.0, "shape": "square",
                    "background": "light"}),                                # 1 ok (plain dict)
        '{"hue": NaN, "scale": 0.3, "offset_x": 0, "shape": "disc", "background": "light"}',
        '{"hue": 0.5, "scale": 5, "offset_x": 0, "shape": "disc", "background": "light"}',
        '{"hue": 0.5, "scale": 0.5, "offset_x": 0, "shape": "star", "background": "light"}',
        '{"hue": 0.5, "scale": 0.5, "offset_x": 0, "shape": "disc", "background": "light", '
        '"ears": 1}',
        "not json",
        "",
        '{"hue": 0.5, "scale": 0.5, "offset_x": 0, "shape": "broken", "background": "light"}',
        '{"hue": "red", "scale": 0.5, "offset_x": 0, "shape": "disc", "background": "light"}',
    ]
    path = tmp_path / "vectors.jsonl"
    path.write_text("\n".join(lines) + "\n")
    config = small_config(tmp_path / "d", vectors=str(path), shard_size=4, prior=None,
                          engine_options={"masks": False})
    summary = run_render_stage(config)
    assert (summary.samples, summary.rendered, summary.errors) == (10, 2, 8)
    data = shards.RenderedDataset(config.out)
    table = data.table()
    assert table.column("sample_id").to_pylist() == [0, 1]
    assert table.column("mask_png").null_count == 2 and set(table.column("seed").to_pylist()) \
        == {-1}
    direct = engine.render(good.batch(), 32)
    np.testing.assert_array_equal(shards.decode_png(table.column("image_png")[0].as_py()),
                                  direct.images[0])
    errs = {r["sample_id"]: r for r in data.errors().to_pylist()}
    assert sorted(errs) == [2, 3, 4, 5, 6, 7, 8, 9]
    expect = {2: ("parse", "NaN"), 3: ("parse", "out of range"), 4: ("parse", "unknown option"),
              5: ("parse", "unknown parameter 'ears'"), 6: ("parse", "does not parse"),
              7: ("parse", "empty line"), 8: ("render", "no asset"),
              9: ("parse", "expected a number")}
    for i, (stage, words) in expect.items():
        assert errs[i]["stage"] == stage and words in errs[i]["error"], errs[i]
        assert errs[i]["error"].startswith(f"line {i + 1}: ")
        assert errs[i]["input"] == lines[i]
    assert errs[8]["d.shape"] == 2 and errs[2]["d.shape"] is None


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_engine_outage_stops_without_marking_the_shard_done(ray_local, tmp_path):
    broken = json.dumps({"hue": 0.5, "scale": 0.5, "offset_x": 0, "shape": "broken",
                         "background": "light"})
    fine = json.dumps({"hue": 0.5, "scale": 0.5, "offset_x": 0, "shape": "disc",
                       "background": "light"})
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join([fine] * 3 + [broken] * 3) + "\n")
    config = small_config(tmp_path / "d", vectors=str(path), shard_size=3, prior=None, workers=1)
    with pytest.raises(RenderStageError, match="failed on 3 of 3 vectors of shard 1"):
        run_render_stage(config)
    assert not (tmp_path / "d" / "shards" / "part-00001.parquet").exists()
    # an operator who knows these vectors are bad lets the run record them and finish
    summary = run_render_stage(dataclasses.replace(config, shard_failure_limit=2.0))
    assert (summary.rendered, summary.errors, summary.complete) == (3, 3, True)


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.slow
def test_engine_that_cannot_start_on_a_worker_is_reported_and_leaves_no_actor(ray_local,
                                                                               tmp_path):
    from conftest import _alive_actor_ids

    config = small_config(tmp_path / "d", engine="engines_for_tests:WorkerlessEngine",
                          count=4, shard_size=2)
    before = _alive_actor_ids()
    with pytest.raises(RenderStageError, match="EngineError: engine assets not found"):
        run_render_stage(config)
    assert not (tmp_path / "d" / "shards").exists()
    assert _alive_actor_ids() - before == set()


@pytest.mark.ray
@pytest.mark.timeout(90)
def test_config_mismatch_is_refused_and_overwrite_replaces(reference, tmp_path):
    import shutil

    ref_config, _ = reference
    with pytest.raises(ConfigMismatchError) as e:
        run_render_stage(dataclasses.replace(ref_config, seed=8, count=21))
    assert "seed 7 -> 8" in str(e.value) and "count 20 -> 21" in str(e.value)
    assert "--overwrite" in str(e.value)
    copy = tmp_path / "copy"
    shutil.copytree(ref_config.out, copy)
    plan = plan_render(dataclasses.replace(ref_config, out=str(copy), seed=8, overwrite=True))
    prepare_output(plan)
    assert not (copy / "shards").exists() and not (copy / "summary.json").exists()
    assert json.loads((copy / "render_config.json").read_text())["dataset"]["seed"] == 8


@pytest.mark.ray
@pytest.mark.timeout(90)
def test_damaged_shards_of_a_finished_render_are_redone_and_named(reference, tmp_path, capsys):
    import shutil

    ref_config, _ = reference
    copy = tmp_path / "copy"
    shutil.copytree(ref_config.out, copy)
    part = copy / "shards" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[:300])                        # truncated: no footer
    shutil.copyfile(copy / "shards" / "part-00003.parquet",           # a footer, 2 rows of 6
                    copy / "shards" / "part-00002.parquet")
    kept = {k: t for k, t in shard_mtimes(copy).items() if k in (0, 3)}
    again = run_render_stage(dataclasses.replace(ref_config, out=str(copy)))
    err = capsys.readouterr().err
    assert "shards/part-00001.parquet" in err and "magic bytes" in err
    assert "shards/part-00002.parquet" in err and "2 rows, expected 6" in err
    assert (again.shards_written, again.shards_skipped, again.complete) == (2, 2, True)
    assert sorted(p.name for p in (copy / "corrupt" / "shards").iterdir()) == [
        "part-00001.parquet", "part-00002.parquet"]
    assert {k: t for k, t in shard_mtimes(copy).items() if k in (0, 3)} == kept
    assert shards.RenderedDataset(str(copy)).table().equals(
        shards.RenderedDataset(ref_config.out).table())
    assert json.loads((copy / "summary.json").read_text())["rendered"] == 20


# ---- the CLI -------------------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_cli_end_to_end_in_a_subprocess(tmp_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "swiftavatar", "render", "--engine", TARGET, "--out", str(out),
           "--count", "10", "--shard-size", "4", "--size", "16", "--seed", "3",
           "--workers", "1", "--no-progress"]
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True,
                          timeout=110, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rendered" in proc.stdout and "of 10 samples" in proc.stdout
    names = sorted(p.name for p in (out / "shards").iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    for f in ("render_config.json", "summary.json", "contact_sheet.png"):
        assert (out / f).is_file(), f
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rendered"] + summary["errors"] == 10 and summary["complete"]
    errors_on_disk = sum(pq.read_metadata(p).num_rows for p in (out / "errors").glob("part-*")) \
        if (out / "errors").exists() else 0
    assert errors_on_disk == summary["errors"]
    # a different config into the same directory: exit code 2, the field named
    bad = subprocess.run(cmd[:-3] + ["--seed", "4", "--no-progress"], env=subprocess_env(),
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and "seed 3 -> 4" in bad.stderr


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_cli_vectors_exit_1_when_any_vector_failed(ray_local, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = json.dumps({"hue": 0.5, "scale": 0.5, "offset_x": 0, "shape": "disc",
                       "background": "light"})
    (tmp_path / "good.jsonl").write_text(f"{good}\n{good}\n")
    (tmp_path / "mixed.jsonl").write_text("\n".join(
        [good, "not json", '{"hue": 2}', good, "", "[1, 2]", '{"shape": "disc"}']) + "\n")
    flags = ["--engine", TARGET, "--size", "16", "--workers", "1", "--no-progress"]
    assert cli_main(["render", "--vectors", "good.jsonl", "--out", "g", *flags]) == 0
    capsys.readouterr()
    assert cli_main(["render", "--vectors", "mixed.jsonl", "--out", "m", *flags]) == 1
    cap = capsys.readouterr()
    assert "rendered 2 of 7 samples (5 errors)" in cap.out
    assert "5 of the given vectors failed" in cap.err and "m/errors/" in cap.err
    assert shards.RenderedDataset("m").table().column("sample_id").to_pylist() == [0, 3]


def test_cli_bad_flag_in_a_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "swiftavatar", "render", "--engine", TARGET,
                           "--out", str(tmp_path / "x"), "--count", "0"],
                          env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--count must be >= 1, got 0" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("flags, words", [
    (["--count", "5", "--shard-size", "0"], "--shard-size must be >= 1, got 0"),
    (["--count", "5", "--workers", "0"], "--workers must be >= 1, got 0"),
    (["--count", "5", "--cpus-per-worker", "0"], "--cpus-per-worker must be > 0"),
    (["--count", "5", "--gpus-per-worker", "-1"], "--gpus-per-worker must be >= 0"),
    (["--count", "5", "--size", "8"], "--size must be in 16..2048, got 8"),
    (["--count", "5", "--seed", "-1"], "--seed must be in 0..2**32-1"),
    (["--count", "5", "--max-shards", "0"], "--max-shards must be >= 1"),
    (["--count", "5", "--render-batch", "0"], "--render-batch must be >= 1"),
    (["--count", "5", "--workers", "2", "--min-workers", "3"],
     "--min-workers must be in 1..workers"),
    ([], "give --count N"),
    (["--count", "5", "--vectors", "v.jsonl"], "--count and --vectors exclude each other"),
    (["--vectors", "missing.jsonl"], "--vectors: no such file"),
    (["--count", "5", "--prior", "missing.json"], "--prior: no such file"),
    (["--count", "5", "--engine-option", "novalue"], "--engine-option takes KEY=VALUE"),
])
def test_cli_bad_flags_name_the_flag(flags, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.jsonl").write_text("{}\n")
    code = cli_main(["render", "--engine", TARGET, "--out", "o", *flags])
    assert code == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_unknown_engine_and_bad_prior(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["render", "--engine", "nope", "--out", "o", "--count", "3",
                     "--dry-run"]) == 2
    assert "unknown engine 'nope'; available:" in capsys.readouterr().err
    (tmp_path / "p.json").write_text(json.dumps({"discrete_weights": {"shape": {"x": 1}}}))
    assert cli_main(["render", "--engine", TARGET, "--out", "o", "--count", "3",
                     "--prior", "p.json", "--dry-run"]) == 2
    assert "unknown option 'x'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(["render", "--engine", TARGET, "--out", "o", "--count", "many"])
    assert e.value.code == 2 and "--count" in capsys.readouterr().err


def test_cli_dry_run_prints_the_resolved_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["render", "--engine", TARGET, "--out", "o", "--count", "300",
                     "--engine-option", "masks=false", "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["shards"] == 2 and shown["config"]["engine_options"] == {"masks": False}
    assert shown["manifest"]["engine_schema"]["supports_masks"] is False
    assert not (tmp_path / "o").exists()


@pytest.mark.ray
@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", ["toon", "avataaars"])
@pytest.mark.slow
def test_stage_with_a_builtin_engine(name, ray_local, tmp_path):
    pytest.importorskip(f"swiftavatar.engines.{name}")
    config = RenderConfig(engine=name, out=str(tmp_path / name), count=6, seed=1, size=64,
                          shard_size=3, workers=2, render_batch=3, progress=False)
    summary = run_render_stage(config)
    assert summary.rendered + summary.errors == 6 and summary.complete
    data = shards.RenderedDataset(config.out)
    table = data.table()
    assert table.column("sample_id").to_pylist() == sorted(
        set(range(6)) - set(data.errors().column("sample_id").to_pylist()))
    assert shards.decode_png(table.column("image_png")[0].as_py()).shape == (64, 64, 3)
    want_null = 0 if data.schema.supports_masks else table.num_rows
    assert table.column("mask_png").null_count == want_null
    vectors = data.schema.sample(1, table.column("sample_id").to_numpy())
    np.testing.assert_array_equal(data.vectors().discrete, vectors.discrete)


def test_suggested_prior_is_resolved_into_the_manifest(tmp_path):
    from actors.render_stage import plan_render

    plan = plan_render(RenderConfig(engine="toon", out=str(tmp_path / "o"), count=400,
                                    prior="suggested"))
    prior = Prior.from_dict(plan.manifest["dataset"]["prior"])
    assert prior.discrete_weights["headwear"]["none"] > 1
    v = plan.schema.sample(0, range(400), prior)
    j = [p.name for p in plan.schema.discrete].index("headwear")
    assert 0.35 < (v.discrete[:, j] == 0).mean() < 0.65  # 'none' as likely as all hats together
