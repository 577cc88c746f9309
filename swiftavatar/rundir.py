"""Run-directory helpers shared by generator and estimator training and the main job (no
torch, no Ray): atomic file writes, finding checkpoint_<n>/ directories, publishing a finished
checkpoint directory into a run and pruning old ones, and a lock that keeps two drivers out
of one run directory."""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator

CHECKPOINT_DIR_RE = re.compile(r"^checkpoint_(\d+)$")
LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another live process is writing into the run directory."""


@contextlib.contextmanager
def run_lock(run_dir: str | Path, what: str = "run") -> Iterator[Path]:
    """Hold an exclusive lock on run_dir/.lock while the block runs; a second holder (any
    process, or another open of the same file) gets RunLockedError naming the holder's pid.
    The kernel drops the lock when its holder dies, so a killed driver never blocks a re-run.
    Local directories only (a URI such as s3://... is not locked)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"another {what} (pid {holder}) is writing into {run_dir}: wait for it to end, "
                f"or use another output directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)                                     # releases the lock


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` then rename onto `path`: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def list_checkpoint_dirs(run_dir: str | Path, sub: str, marker: str) -> dict[int, Path]:
    """{n: dir} for every checkpoint_<n>/ holding `marker`, in run_dir/sub or run_dir."""
    run_dir = Path(run_dir)
    found: dict[int, Path] = {}
    for base in (run_dir / sub, run_dir):
        if not base.is_dir():
            continue
        for p in base.iterdir():
            m = CHECKPOINT_DIR_RE.match(p.name)
            if m and (p / marker).is_file():
                found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def publish_checkpoint(src: str | Path, dest: Path, keep: int,
                       existing: Callable[[], dict[int, Path]]) -> None:
    """Copy the checkpoint directory `src` to `dest` (whole or absent), then delete all but
    the newest `keep` of `existing()`."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    found = existing()
    for old in sorted(found)[:-keep]:
        shutil.rmtree(found[old], ignore_errors=True)


__all__ = ["CHECKPOINT_DIR_RE", "atomic_write", "list_checkpoint_dirs", "publish_checkpoint"]
