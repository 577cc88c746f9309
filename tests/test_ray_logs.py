"""Quiet runs: a command that starts Ray shows its own lines only; Ray's output (its loggers,
the workers' stdout and stderr, the C++ core's lines) goes to RUN/logs/ray.log, whose last
lines are printed on failure; --verbose shows it all as before."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import subprocess_env
from engines_for_tests import TARGET

pytestmark = [pytest.mark.slow, pytest.mark.timeout(200)]

# What Ray's own output looks like on a terminal: a worker's or actor's line, a Ray logger's
# line, the C++ core's line.
RAY_MARKS = ("(pid=", "(MapWorker", "(raylet)", "(autoscaler", "worker.py:",
             "Started a local Ray instance", "core_worker.cc", "streaming_executor",
             "Progress bars disabled")


def _render(tmp_path, engine: str, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "swiftavatar", "render", "--engine", engine,
         "--out", str(tmp_path / "ds"), "--count", "4", "--size", "16", "--workers", "1",
         *extra],
        env=subprocess_env(), capture_output=True, timeout=180, cwd=tmp_path)
    # bytes, decoded here: text mode would turn a bar's \r redraws into lines
    proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
    return proc


def _shown(text: str) -> list[str]:
    """The lines a terminal shows: a bar redrawn with \\r is one line, its last state."""
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n")[:-1]]


def _ray_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(m in line for m in RAY_MARKS)]


def test_render_keeps_ray_output_in_the_run_log(tmp_path):
    proc = _render(tmp_path, TARGET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = tmp_path / "ds" / "logs" / "ray.log"
    assert _shown(proc.stderr)[0] == f"logs: {log}"
    assert _ray_lines(proc.stdout + proc.stderr) == []
    # the bar (one line, redrawn with \r), the logs line and the result: nothing else
    assert len(_shown(proc.stderr)) == 2 and len(_shown(proc.stdout)) == 1, proc.stderr
    text = log.read_text()
    assert "Started a local Ray instance" in text     # Ray's logger
    assert "core_worker.cc" in text                   # the driver's C++ core (fd 2)


def test_a_failing_command_prints_the_log_tail(tmp_path):
    """The engine cannot be built in a Ray worker: the worker's traceback is in the log, and
    the failure shows the log's last lines and path before the one-line error."""
    proc = _render(tmp_path, "engines_for_tests:WorkerlessEngine")
    assert proc.returncode == 2
    log = tmp_path / "ds" / "logs" / "ray.log"
    err = _shown(proc.stderr)
    tail_at = next(i for i, line in enumerate(err) if line.startswith("Ray log, last "))
    assert str(log) in err[tail_at]
    tail = err[tail_at + 1:-1]
    assert 0 < len(tail) <= 40 and all(line.startswith("  ") for line in tail)
    assert any("engine assets not found on this node" in line for line in tail)
    assert err[-1].startswith("swiftavatar render: error: ") and \
        "engine assets not found on this node" in err[-1]
    # before the failure the terminal had no Ray output of its own
    assert _ray_lines("\n".join(err[:tail_at]) + proc.stdout) == []
    assert "engine assets not found on this node" in log.read_text()


def test_verbose_shows_ray_output_on_the_terminal_too(tmp_path):
    proc = _render(tmp_path, TARGET, "--verbose", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Started a local Ray instance" in proc.stderr
    log = tmp_path / "ds" / "logs" / "ray.log"
    assert "Started a local Ray instance" in log.read_text()


def test_verbose_flag_is_on_every_command_that_runs_on_ray():
    from swiftavatar.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("render", "produce", "train-generator", "train-estimator", "sweep", "demo"):
        help_text = sub.choices[name].format_help()
        assert "-v, --verbose" in help_text and "logs/ray.log" in help_text, name


def test_worker_lines_go_to_the_file_and_a_stage_s_own_lines_to_the_terminal(tmp_path, capsys):
    """In process, no Ray needed: what Ray would print for a worker goes to the file with
    Ray's prefix; a relayed progress line shows on the terminal as the worker printed it;
    Ray's loggers write to the file; close() puts Ray's printer and handlers back."""
    import logging

    import ray._private.worker as ray_worker

    from actors.ray_logs import RayLog

    path = tmp_path / "logs" / "ray.log"
    printer = ray_worker.print_worker_logs
    ray_handlers = list(logging.getLogger("ray").handlers)
    log = RayLog(path, loud=False, relay=("[train-estimator] ",))
    log.start()
    try:
        ray_worker.print_worker_logs(
            {"pid": 7, "actor_name": "RayTrainWorker", "is_err": False, "ip": "127.0.0.1",
             "localhost": "127.0.0.1",
             "lines": ["[train-estimator] epoch 1/2: loss 3", "Checkpoint created"]},
            sys.stdout)
        logging.getLogger("ray.train").warning("a line from Ray's logger")
    finally:
        log.close()
    out, err = capsys.readouterr()
    assert out == "[train-estimator] epoch 1/2: loss 3\n"
    assert err == f"logs: {path}\n"
    text = path.read_text()
    assert "(RayTrainWorker pid=7) Checkpoint created" in text
    assert "WARNING ray.train: a line from Ray's logger" in text
    assert ray_worker.print_worker_logs is printer
    after = logging.getLogger("ray").handlers   # Ray (or pytest) may add its own meanwhile
    assert all(h in after for h in ray_handlers)
    assert not [h for h in after if getattr(h, "stream", None) is not None
                and getattr(h.stream, "name", None) == str(path)]
