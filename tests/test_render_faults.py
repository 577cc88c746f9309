"""A renderer that dies is the engine's fault, not the vectors': the batch is retried on a
fresh engine or the stage stops; and a re-run retries the vectors in errors/."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from actors.render_stage import RenderConfig, plan_render, prepare_output
from actors.renderer import EngineRenderer, RenderJob
from engines_for_tests import FLAKY_HUE, SquaresEngine
from swiftavatar import shards
from swiftavatar.cli import main as cli_main
from swiftavatar.engines.registry import EngineSpec

DYING = "engines_for_tests:DyingHelperEngine"
FLAKY = "engines_for_tests:FlakyEngine"
NO_BROKEN = {"discrete_weights": {"shape": {"broken": 0.0}}}


def _deaths(tmp_path, n: int) -> str:
    path = tmp_path / "deaths"
    path.write_text(str(n))
    return str(path)


def _parquet_names(out) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))


def test_renderer_restarts_an_engine_whose_helper_died(tmp_path):
    """Two dead batches (one fresh engine each) then the helper lives: every row is rendered,
    none is blamed; the pixels are the plain engine's."""
    deaths = _deaths(tmp_path, 2)
    spec = EngineSpec(DYING, {"deaths": deaths})
    job = RenderJob(engine=spec, out=str(tmp_path / "d"), seed=7, size=16, render_batch=4,
                    schema_fingerprint=SquaresEngine().schema.fingerprint, prior=NO_BROKEN)
    renderer = EngineRenderer(job)
    first = renderer.engine
    res = renderer.render_shard(0, 0, 6)
    assert (res["status"], res["rows"], res["errors"]) == ("written", 6, 0)
    assert renderer.engine is not first  # a fresh engine rendered
    assert not (tmp_path / "d" / "errors").exists()
    plain = EngineRenderer(RenderJob(**{**job.__dict__, "engine": EngineSpec(
        "engines_for_tests:SquaresEngine"), "out": str(tmp_path / "p")})).render_tables(0, 0, 6)
    assert pq.read_table(res["path"]).column("image_png").equals(plain[0].column("image_png"))


@pytest.mark.ray
@pytest.mark.timeout(150)
def test_a_dead_engine_stops_the_stage_and_blames_no_vector(ray_local, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    deaths = _deaths(tmp_path, 1000)
    flags = ["--engine", DYING, "--engine-option", f"deaths={deaths}", "--count", "12",
             "--shard-size", "6", "--render-batch", "4", "--size", "16", "--workers", "1",
             "--no-progress", "--out", "d"]
    assert cli_main(["render", *flags]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "render: error" in ln]
    assert len(lines) == 1, lines
    err = lines[0]
    assert f"engine '{DYING}' failed on 4 of 4 vectors of shard 0 (BrokenPipeError:" in err
    assert "re-run" in err
    assert _parquet_names(tmp_path / "d") == []  # no shard finished, no vector in errors/
    # the engine is mended: the same command renders every row
    (tmp_path / "deaths").write_text("0")
    assert cli_main(["render", *flags]) == 0
    schema = SquaresEngine().schema
    broken = np.flatnonzero(schema.sample(0, np.arange(12)).discrete[:, 0]
                            == schema.param("shape").options.index("broken"))
    assert f"rendered {12 - len(broken)} of 12 samples" in capsys.readouterr().out
    errs = shards.RenderedDataset("d").errors()  # only the vectors the engine cannot draw
    assert errs.column("sample_id").to_pylist() == broken.tolist()
    assert all(m.startswith("EngineError: shape 'broken'")
               for m in errs.column("error").to_pylist())


@pytest.mark.ray
@pytest.mark.timeout(200)
def test_a_rerun_retries_the_vectors_in_errors(ray_local, tmp_path, capsys, monkeypatch):
    """Run 1: the engine fails some vectors (its own fault, each in a batch with good ones):
    they go to errors/. Run 2, --no-retry-errors: they stay out. Run 3: the ones that render
    now come back; the 'broken' ones, which the engine can never draw, stay errors."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    marker.write_text("")
    schema = SquaresEngine().schema
    vectors = schema.sample(11, np.arange(18))
    broken = vectors.discrete[:, 0] == schema.param("shape").options.index("broken")
    flaky = (vectors.continuous[:, 0] > FLAKY_HUE) & ~broken
    assert broken.any() and flaky.any(), "seed 11 should give both kinds"
    flags = ["--engine", FLAKY, "--engine-option", f"marker={marker}", "--count", "18",
             "--seed", "11", "--shard-size", "6", "--render-batch", "4", "--size", "16",
             "--workers", "1", "--no-progress", "--out", "d"]
    assert cli_main(["render", *flags]) == 0
    assert f"rendered {18 - (broken | flaky).sum()} of 18" in capsys.readouterr().out
    data = shards.RenderedDataset("d")
    errs = data.errors()
    assert errs.column("sample_id").to_pylist() == np.flatnonzero(broken | flaky).tolist()
    assert set(errs.column("stage").to_pylist()) == {"render"}
    assert {m.split(":")[0] for m in errs.column("error").to_pylist()} == {"EngineError",
                                                                            "ValueError"}
    marker.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "d").rglob("*.parquet")}

    assert cli_main(["render", *flags, "--no-retry-errors"]) == 0
    assert f"({(broken | flaky).sum()} errors)" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "d").rglob("*.parquet")} == before

    assert cli_main(["render", *flags]) == 0
    out = capsys.readouterr().out
    assert f"rendered {18 - broken.sum()} of 18 samples ({broken.sum()} errors)" in out
    assert f"{flaky.sum()} vectors from errors/ of an earlier run rendered this time" in out
    table = data.table()
    assert table.column("sample_id").to_pylist() == np.flatnonzero(~broken).tolist()
    assert data.errors().column("sample_id").to_pylist() == np.flatnonzero(broken).tolist()
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert (summary["recovered"], summary["errors"]) == (flaky.sum(), broken.sum())
    # the recovered rows are the engine's pixels, as if they had never failed
    direct = SquaresEngine().render(vectors.select(np.flatnonzero(flaky).tolist()), 16)
    got = {sid: png for sid, png in zip(table.column("sample_id").to_pylist(),
                                        table.column("image_png").to_pylist())}
    for k, sid in enumerate(np.flatnonzero(flaky)):
        np.testing.assert_array_equal(shards.decode_png(got[int(sid)]), direct.images[k])
    # a shard whose errors are now all gone has no errors file
    for k in range(3):
        left = broken[6 * k:6 * k + 6].any()
        assert (tmp_path / "d" / "errors" / shards.shard_name(k)).exists() == left


def test_a_retry_stopped_between_its_two_writes_is_rendered_again(tmp_path, monkeypatch):
    """The retry writes the errors file, then the shard; stopped in between, the counts do
    not add up and the next run's check moves the shard aside to render it again."""
    marker = tmp_path / "marker"
    marker.write_text("")
    config = RenderConfig(engine=FLAKY, engine_options={"marker": str(marker)},
                          out=str(tmp_path / "d"), count=6, seed=11, size=16, shard_size=6,
                          render_batch=4, progress=False)
    plan = plan_render(config)
    prepare_output(plan)
    job = RenderJob(engine=plan.spec, out=config.out, seed=11, size=16, render_batch=4,
                    schema_fingerprint=plan.schema.fingerprint,
                    prior=plan.manifest["dataset"]["prior"])
    renderer = EngineRenderer(job)
    flaky = np.flatnonzero(plan.schema.sample(11, np.arange(6)).continuous[:, 0] > FLAKY_HUE)
    assert renderer.render_shard(0, 0, 6)["errors"] == len(flaky) > 0
    marker.unlink()
    write = shards.write_table_atomic

    def stop_at_the_shard(fs, path, table):
        if "/shards/" in path:
            raise KeyboardInterrupt
        write(fs, path, table)

    monkeypatch.setattr(shards, "write_table_atomic", stop_at_the_shard)
    with pytest.raises(KeyboardInterrupt):
        renderer.retry_errors(0, 0, 6)
    monkeypatch.setattr(shards, "write_table_atomic", write)
    assert prepare_output(plan) == [0]
    assert (tmp_path / "d" / "corrupt" / "shards" / "part-00000.parquet").exists()
    assert renderer.render_shard(0, 0, 6)["rows"] == 6


def test_a_sub_batch_of_only_bad_vectors_is_not_blamed_on_the_engine(tmp_path):
    """The last sub-batch holds two vectors the engine has no asset for (same exception type):
    the engine still renders the schema's default vector, so they are per-vector errors and
    the shard is written with the other four rows; no engine restart."""
    from engines_for_tests import SHAPES
    from swiftavatar.engines.schema import Prior

    schema = SquaresEngine().schema
    batch = schema.sample(3, np.arange(6), Prior.from_dict(NO_BROKEN))
    batch.discrete[4:, 0] = SHAPES.index("broken")
    lines = [batch[i].to_json() for i in range(6)]
    job = RenderJob(engine=EngineSpec("engines_for_tests:SquaresEngine"), out=str(tmp_path),
                    seed=-1, size=16, render_batch=2, schema_fingerprint=schema.fingerprint,
                    from_vectors=True)
    renderer = EngineRenderer(job)
    first = renderer.engine
    table, errors = renderer.render_tables(0, 0, 6, lines)
    assert table.column("sample_id").to_pylist() == [0, 1, 2, 3]
    assert errors.column("sample_id").to_pylist() == [4, 5]
    assert all("has no asset" in m for m in errors.column("error").to_pylist())
    assert renderer.engine is first
