"""Stage configs and the flags built from them: a field becomes a flag with its default and
help, parsed flags become the config again, problems name the flag, configs (nested ones too)
round-trip through JSON, and differences name the fields."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from conftest import subprocess_env
from swiftavatar.cli import CliError
from swiftavatar.cli import main as cli_main
from swiftavatar.cli.flags import add_config_flags, config_from_args
from swiftavatar.config import StageConfig, flag_name, option


@dataclass(frozen=True)
class Inner(StageConfig):
    size: int = 64
    channels: tuple[int, ...] = (8, 16)


@dataclass(frozen=True)
class Toy(StageConfig):
    name: str = option(help="what to call it")
    steps: int = option(100, help="training steps")
    rate: float = option(0.002, help="learning rate (default {default}; 0: frozen)")
    limit: int | None = option(None, help="stop after this many (default: never)")
    workers: int = option(2, flag="--threads", help="worker threads")
    mode: str = option("fast", choices=("fast", "exact"), help="how")
    masks: bool | None = option(None, choices={"auto": None, "yes": True, "no": False},
                                help="use masks; auto (default): when there are any")
    overwrite: bool = option(False, help="replace what is there")
    progress: bool = option(True, flag="--no-progress", help="no progress bar")
    options: dict = option(default_factory=dict, flag="--option", help="KEY=VALUE; repeatable")
    inner: Inner = option(default_factory=Inner, flag="--size", cli=False)
    betas: tuple[float, float] = (0.0, 0.99)
    extra: float = 1.0                      # not on the command line

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.steps < 1:
            out.append(("steps", f"must be >= 1, got {self.steps}"))
        if self.workers < 1:
            out.append(("workers", f"must be >= 1, got {self.workers}"))
        if self.inner.size not in (64, 128):
            out.append(("inner", f"must be 64 or 128, got {self.inner.size}"))
        return out


def parser_of(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toy")
    add_config_flags(p, Toy, **kw)
    return p


def help_of(p: argparse.ArgumentParser) -> str:
    return " ".join(p.format_help().split())      # argparse wraps lines: compare words


def test_each_field_becomes_a_flag_with_its_default_and_help():
    p = parser_of()
    shown = help_of(p)
    for words in ("--name NAME what to call it", "--steps STEPS training steps (default 100)",
                  "--rate RATE learning rate (default 0.002; 0: frozen)",
                  "--limit LIMIT stop after this many (default: never)",
                  "--threads THREADS worker threads (default 2)", "--mode {fast,exact} how",
                  "--masks {auto,yes,no} use masks; auto (default): when there are any",
                  "--overwrite replace what is there", "--no-progress no progress bar",
                  "--option KEY=VALUE KEY=VALUE; repeatable"):
        assert words in shown, words
    assert "--extra" not in shown and "--size" not in shown and "--betas" not in shown
    args = p.parse_args(["--name", "a"])
    assert config_from_args(Toy, args) == Toy(name="a")
    with pytest.raises(SystemExit):                  # a field without a default is required
        p.parse_args([])


def test_parsed_flags_become_the_config():
    args = parser_of().parse_args(
        ["--name", "a", "--steps", "7", "--threads", "3", "--mode", "exact", "--masks", "no",
         "--overwrite", "--no-progress", "--option", "k=1", "--option", "s=text"])
    cfg = config_from_args(Toy, args, inner=Inner(size=128))
    assert cfg == Toy(name="a", steps=7, workers=3, mode="exact", masks=False, overwrite=True,
                      progress=False, options={"k": 1, "s": "text"}, inner=Inner(size=128))


def test_command_line_defaults_and_flags_from_a_base_config():
    args = parser_of(defaults={"steps": 5}).parse_args(["--name", "a"])
    assert config_from_args(Toy, args).steps == 5
    p = parser_of(names=("steps", "rate"), from_base="the preset's")
    assert "training steps (default: the preset's)" in help_of(p)
    base = Toy(name="b", steps=50, rate=0.1)
    assert config_from_args(Toy, p.parse_args([]), base=base) == base
    assert config_from_args(Toy, p.parse_args(["--rate", "0.5"]), base=base).rate == 0.5


def test_a_bad_value_names_its_flag():
    p = parser_of()
    with pytest.raises(CliError, match=r"^--steps must be >= 1, got 0; --threads must be >= 1"):
        config_from_args(Toy, p.parse_args(["--name", "a", "--steps", "0", "--threads", "0"]))
    with pytest.raises(CliError, match=r"^--size must be 64 or 128, got 32$"):
        config_from_args(Toy, p.parse_args(["--name", "a"]), inner=Inner(size=32))
    with pytest.raises(CliError, match=r"--option takes KEY=VALUE, got 'novalue'"):
        config_from_args(Toy, p.parse_args(["--name", "a", "--option", "novalue"]))
    assert flag_name(Toy, "extra") == "--extra" and flag_name(Toy, "workers") == "--threads"
    with pytest.raises(ValueError, match="steps must be >= 1"):
        Toy(name="a", steps=0).validate()


def test_a_nested_config_round_trips_through_json():
    cfg = Toy(name="a", inner=Inner(size=128, channels=(1, 2, 3)), betas=(0.5, 0.9),
              options={"k": [1, 2]})
    back = Toy.from_dict(json.loads(cfg.to_json()))
    assert back == cfg and isinstance(back.inner, Inner) and back.inner.channels == (1, 2, 3)
    assert back.betas == (0.5, 0.9)
    with pytest.raises(ValueError, match=r"unknown Toy fields \['nope'\]"):
        Toy.from_dict({"name": "a", "nope": 1})


def test_the_stage_configs_round_trip_through_json():
    from actors.render_stage import RenderConfig
    from swiftavatar.estimator.config import EstimatorTrainConfig
    from swiftavatar.training.gan_config import GanTrainConfig, embedded_generator

    for cfg in (RenderConfig(engine="toon", out="o", prior={"continuous": "normal"},
                             engine_options={"masks": False}),
                GanTrainConfig(out="o", generator=embedded_generator(128)).resolved(),
                EstimatorTrainConfig.embedded(data="d", out="o")):
        assert type(cfg).from_dict(json.loads(cfg.to_json())) == cfg


def test_differences_name_the_fields():
    a = Toy(name="a")
    b = Toy(name="a", steps=5, inner=Inner(channels=(8, 32)), options={"k": 1})
    assert a.differences(a) == []
    assert a.differences(b) == ["steps", "options", "inner.channels"]
    assert a.differences(b, fields=("name", "inner")) == ["inner.channels"]


def test_building_the_parser_imports_no_torch():
    """A command's config flags are added when it parses, so the parser of every command is
    built without importing torch."""
    code = ("import sys; from swiftavatar.cli import build_parser; p = build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=subprocess_env(), timeout=60)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("command, words", [
    ("render", ["--shard-size SHARD_SIZE rows per shard (default 256)",
                "--engine-option KEY=VALUE", "--gpus-per-worker GPUS_PER_WORKER GPUs each "
                "actor reserves (default 0; > 0 only on GPU clusters)",
                "--no-progress no progress bar"]),
    ("train-generator", ["--workers WORKERS Ray Train workers, data-parallel (default 1)",
                         "--max-failures MAX_FAILURES", "checkpoint (default 2)",
                         "--mask-discriminator {auto,yes,no}",
                         "--steps STEPS total training iterations (default: 20000 real, "
                         "2000 avatar)"]),
    ("train-estimator", ["--epochs EPOCHS epochs (default: the preset's)",
                         "--rows {all,inverted}", "--workers WORKERS Ray Train workers"]),
])
def test_commands_show_their_config_flags(command, words, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([command, "--help"])
    assert e.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    for w in words:
        assert w in shown, w


@pytest.mark.ray
@pytest.mark.timeout(150)
def test_ray_address_flag_runs_the_stage_on_that_cluster(ray_local, tmp_path):
    """--ray-address reaches ray_session as an argument: the render driver joins the running
    cluster (its job appears there) instead of starting a Ray of its own."""
    from ray._private.state import jobs

    before = {j["JobID"] for j in jobs()}
    out = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, "-m", "swiftavatar", "render", "--engine",
         "engines_for_tests:SquaresEngine", "--out", str(out), "--count", "4", "--size", "16",
         "--workers", "1", "--no-progress",
         "--ray-address", ray_local.get_runtime_context().gcs_address],
        env=subprocess_env(), capture_output=True, text=True, timeout=140, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rendered" in proc.stdout
    drivers = [j for j in jobs() if j["JobID"] not in before]
    assert drivers, "the render driver did not join the test cluster"
