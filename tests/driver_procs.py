"""Driver processes for tests that kill them: each runs in its own session (process group)
with its own RAY_TMPDIR, so every Ray process it starts - GCS, raylets, agents and the
workers, which sit in process groups of their own and rename themselves `ray::...` - carries
that directory in its environment. `reap` finds them by it, and only them: never by name,
never another test's or another user's Ray."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from conftest import subprocess_env

PYTHON = sys.executable


def ray_tmpdir() -> str:
    """A fresh, short temp dir (Ray's socket paths must stay under about 100 bytes)."""
    return tempfile.mkdtemp(prefix="rk-")


def own_pids(proc_file: str, matches) -> set[int]:
    """PIDs of this user's other processes whose /proc/<pid>/`proc_file` bytes satisfy
    `matches(bytes)`; processes gone meanwhile (or not ours to read) are skipped."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            data = (entry / proc_file).read_bytes()
        except OSError:
            continue
        if matches(data):
            found.add(int(entry.name))
    return found


def pids_with_env(marker: str) -> set[int]:
    """PIDs of this user's processes whose environment holds RAY_TMPDIR=`marker`."""
    needle = f"RAY_TMPDIR={marker}".encode()
    return own_pids("environ", lambda env: needle in env.split(b"\0"))


def pids_with_cmdline(marker: str) -> set[int]:
    """PIDs of this user's processes whose command line contains `marker`."""
    return own_pids("cmdline", lambda cmd: marker in cmd.replace(b"\0", b" ").decode(
        errors="replace"))


class Driver:
    """A command run as a driver: own session, own RAY_TMPDIR, output to a log file."""

    def __init__(self, args: Sequence[str], log: Path, tmpdir: str | None = None,
                 cwd: str | Path | None = None, **env: str) -> None:
        self.tmpdir = tmpdir or ray_tmpdir()
        self.log = Path(log)
        self.args = list(args)
        self.env = subprocess_env(RAY_TMPDIR=self.tmpdir, **env)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Driver":
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill_group(self) -> None:
        """SIGKILL the driver's whole process group (what a lost login or `kill -9 -PGID`
        does), and wait for the driver itself."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self._out.close()


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str, driver: Driver | None = None,
             poll_s: float = 0.05) -> None:
    """Poll `cond` until true; fail naming `what` (and the driver's output) on timeout or
    when the driver exits first."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if driver is not None and driver.proc is not None and driver.proc.poll() is not None:
            if cond():
                return
            raise AssertionError(f"the driver exited ({driver.proc.returncode}) before "
                                 f"{what}:\n{driver.output()[-4000:]}")
        if time.monotonic() > deadline:
            tail = driver.output()[-4000:] if driver is not None else ""
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{tail}")
        time.sleep(poll_s)


def reap(marker: str, grace_s: float = 10.0) -> tuple[set[int], set[int]]:
    """Wait up to `grace_s` for the processes of a driver's Ray (RAY_TMPDIR=`marker`) to end
    by themselves, then SIGKILL the rest until none is left. Returns (PIDs found at first,
    PIDs that had to be killed)."""
    first = pids_with_env(marker)
    deadline = time.monotonic() + grace_s
    left = set(first)
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        left = pids_with_env(marker)
    killed: set[int] = set()
    deadline = time.monotonic() + 15.0
    while left and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.25)
        left = pids_with_env(marker)
    if left:
        raise AssertionError(f"processes of {marker} still alive after SIGKILL: {sorted(left)}")
    return first, killed


__all__ = ["Driver", "PYTHON", "own_pids", "pids_with_cmdline", "pids_with_env", "ray_tmpdir",
           "reap", "wait_for"]
