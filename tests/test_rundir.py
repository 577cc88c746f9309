"""The run-directory kernel every stage uses (swiftavatar.rundir, swiftavatar.atomic): atomic
writes, the identity diff, shard verification, the lock; and, through each command's CLI in a
subprocess, the lock and an `--out` that is a file (exit code 2, one line naming the pid or
the path)."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from conftest import subprocess_env
from swiftavatar import atomic
from swiftavatar.cli import path_error_message
from swiftavatar.rundir import (CORRUPT_DIR, RunDir, RunLockedError, RunMismatchError,
                                identity_diff)


# ---- atomic writes ------------------------------------------------------------------------
def test_atomic_writes_local_and_through_a_filesystem(tmp_path):
    atomic.write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "a" / "x.json").read_text() == atomic.json_text({"a": [1, 2], "b": 1})
    atomic.write_text(str(tmp_path / "t.txt"), "hello")
    assert (tmp_path / "t.txt").read_text() == "hello"
    fs = pafs.LocalFileSystem()
    atomic.write_bytes(str(tmp_path / "fs" / "y.bin"), b"\x00\x01", fs=fs)
    assert (tmp_path / "fs" / "y.bin").read_bytes() == b"\x00\x01"
    atomic.torch_save(tmp_path / "m.pt", {"w": [1.0]})
    import torch

    assert torch.load(tmp_path / "m.pt") == {"w": [1.0]}
    # a failed write leaves the old file and no temporary
    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk went away")

    with pytest.raises(RuntimeError):
        atomic.write_with(tmp_path / "t.txt", fail)
    assert (tmp_path / "t.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "fs", "m.pt", "t.txt"]

    def full(tmp: str) -> None:          # a full disk names no file: the error then names ours
        raise OSError(errno.ENOSPC, "No space left on device")

    for fs in (None, pafs.LocalFileSystem()):
        with pytest.raises(OSError) as e:
            atomic.write_with(str(tmp_path / "big.bin"), full, fs=fs)
        assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(tmp_path / "big.bin"))
        assert path_error_message(e.value).startswith(f"{tmp_path / 'big.bin'}: No space")


def test_directories_appear_whole_and_temporaries_are_cleared(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("1")
    atomic.copy_dir(src, tmp_path / "dest")
    assert (tmp_path / "dest" / "f").read_text() == "1"

    def half(tmp: Path) -> None:
        (tmp / "g").write_text("2")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.write_dir(tmp_path / "dest", half)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["f"]
    assert not atomic.write_dir(tmp_path / "dest", lambda t: None, replace=False)
    (tmp_path / atomic.temp_name("x.parquet")).write_bytes(b"torn")
    (tmp_path / "notes.txt").write_text("kept")
    assert atomic.remove_temporaries(str(tmp_path)) == 1
    assert not [p for p in tmp_path.iterdir() if atomic.is_temporary(p.name)]


# ---- identity -----------------------------------------------------------------------------
def test_identity_diff_names_each_field():
    old = {"size": 256, "seed": 0, "prior": {"a": 1}, "engine": "toon"}
    new = {"size": 128, "seed": 0, "prior": {"a": 2}, "engine": "toon", "extra": True}
    assert identity_diff(old, new) == ['extra null -> true', 'prior {"a": 1} -> {"a": 2}',
                                       "size 256 -> 128"]
    assert identity_diff(old, new, keys=("size", "seed")) == ["size 256 -> 128"]
    long = identity_diff({"x": "a" * 100}, {"x": "b"})[0]
    assert long.startswith('x "aaa') and "..." in long and len(long) < 80


def test_check_identity_writes_then_refuses_a_different_run(tmp_path):
    rd = RunDir(tmp_path / "run", "render")
    assert rd.check_identity("m.json", {"dataset": {"size": 256}, "created": 1},
                             section="dataset") is None
    old = rd.check_identity("m.json", {"dataset": {"size": 256}, "created": 2},
                            section="dataset", write=False)
    assert old["created"] == 1 and rd.read_json("m.json")["created"] == 1
    with pytest.raises(RunMismatchError, match=r"run holds a different run \(size 256 -> 128\)"
                                               r"; use a new --out"):
        rd.check_identity("m.json", {"dataset": {"size": 128}}, section="dataset")


# ---- shard verification -------------------------------------------------------------------
def _shard(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"sample_id": np.arange(rows)}), path)


def test_damaged_or_short_shards_are_moved_aside_and_named(tmp_path):
    for k, rows in enumerate((5, 4, 5, 5)):
        _shard(tmp_path / "shards" / f"part-{k:05d}.parquet", rows)
    _shard(tmp_path / "errors" / "part-00001.parquet", 1)       # shard 1: 4 rendered + 1 error
    _shard(tmp_path / "errors" / "part-00003.parquet", 2)       # shard 3 should then hold 3
    (tmp_path / "shards" / "part-00002.parquet").write_bytes(
        (tmp_path / "shards" / "part-00000.parquet").read_bytes()[:40])   # truncated
    log: list[str] = []
    rd = RunDir(tmp_path, "render", log=log.append)

    def expected(k: int) -> int:
        return 5 - rd.shard_rows("errors", k)

    assert rd.verify_shards("shards", expected, companions=("errors",)) == [2, 3]
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet"]
    assert sorted(p.name for p in (tmp_path / CORRUPT_DIR / "shards").iterdir()) == [
        "part-00002.parquet", "part-00003.parquet"]
    assert [p.name for p in (tmp_path / CORRUPT_DIR / "errors").iterdir()] == [
        "part-00003.parquet"]
    assert len(log) == 2 and "shards/part-00002.parquet" in log[0] and "magic" in log[0]
    assert "5 rows, expected 3" in log[1]
    assert rd.verify_shards("shards", expected, companions=("errors",)) == []


# ---- the lock -----------------------------------------------------------------------------
def test_lock_refuses_a_second_holder_and_is_released(tmp_path):
    rd = RunDir(tmp_path / "run", "render")
    with rd.lock():
        with pytest.raises(RunLockedError, match=rf"another render \(pid {os.getpid()}\)"):
            with RunDir(tmp_path / "run", "render").lock():
                pass
    with rd.lock():
        pass
    uri = RunDir(f"file://{tmp_path}/run", "render")       # URIs: no lock (documented)
    with rd.lock(), uri.lock():
        pass


def test_path_errors_become_one_line_naming_the_path(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError) as e:
        RunDir(tmp_path / "f" / "sub").create()
    msg = path_error_message(e.value)
    assert msg.startswith(f"{tmp_path / 'f'}: is a file") and "\n" not in msg
    full = OSError(errno.ENOSPC, "No space left on device", "/data/out/x.parquet")
    assert path_error_message(full) == ("/data/out/x.parquet: No space left on device; the disk "
                                        "is full: free some space, or choose another output "
                                        "directory")
    assert path_error_message(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None


# ---- every command, through its CLI -------------------------------------------------------
@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> Path:
    from synthetic import write_toon_renders

    return write_toon_renders(tmp_path_factory.mktemp("rundir") / "renders", 8, size=32)


@pytest.fixture(scope="module")
def gens(tmp_path_factory) -> tuple[str, str]:
    from synthetic import write_tiny_generators

    return write_tiny_generators(tmp_path_factory.mktemp("rundir") / "gens")


def _commands(out: Path, renders: Path, gens: tuple[str, str]) -> dict[str, list[str]]:
    from engines_for_tests import TARGET

    return {
        "render": ["render", "--engine", "toon", "--count", "4", "--size", "32",
                   "--out", str(out), "--no-progress"],
        "produce": ["produce", "--engine", TARGET, "--count", "2", "--g-avatar", gens[0],
                    "--g-real", gens[1], "--n-mean", "32", "--steps", "1",
                    "--augmentations", "1", "--out", str(out), "--no-progress"],
        "train-generator": ["train-generator", "--domain", "real", "--size", "64",
                            "--steps", "1", "--out", str(out), "--no-progress"],
        "train-estimator": ["train-estimator", "--data", str(renders), "--out", str(out),
                            "--no-progress"],
    }


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swiftavatar", *args], env=subprocess_env(),
                          capture_output=True, text=True, timeout=240, cwd=cwd)


def _one_error_line(proc: subprocess.CompletedProcess, command: str) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("swiftavatar ")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"swiftavatar {command}: error: "), \
        proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", ["render", "produce", "train-generator", "train-estimator"])
def test_a_second_run_into_a_held_directory_is_refused_with_the_first_pid(command, renders,
                                                                          gens, tmp_path):
    out = tmp_path / "out"
    with RunDir(out, "test holder").lock():
        proc = _cli(_commands(out, renders, gens)[command], tmp_path)
    line = _one_error_line(proc, command)
    assert f"(pid {os.getpid()})" in line and str(out) in line
    assert sorted(p.name for p in out.iterdir()) == [".lock"]    # nothing else written


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", ["render", "produce", "train-generator", "train-estimator"])
def test_an_out_that_is_a_file_is_one_line_naming_it(command, renders, gens, tmp_path):
    out = tmp_path / "a_file"
    out.write_text("not a directory")
    line = _one_error_line(_cli(_commands(out, renders, gens)[command], tmp_path), command)
    assert f"{out}: is a file, not a directory" in line
    assert out.read_text() == "not a directory"


@pytest.mark.timeout(120)
def test_demo_refuses_a_held_directory_and_an_out_that_is_a_file(tmp_path):
    out = tmp_path / "run"
    with RunDir(out, "test holder").lock():
        line = _one_error_line(_cli(["demo", "--quick", "--out", str(out)], tmp_path), "demo")
    assert f"(pid {os.getpid()})" in line
    assert not (out / "demo_config.json").exists()
    (tmp_path / "f").write_text("x")
    line = _one_error_line(_cli(["demo", "--quick", "--out", str(tmp_path / "f")], tmp_path),
                           "demo")
    assert f"{tmp_path / 'f'}: is a file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "run"]
