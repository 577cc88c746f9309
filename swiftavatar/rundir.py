"""Run-directory helpers shared by generator and estimator training (no torch, no Ray):
atomic file writes, finding checkpoint_<n>/ directories, publishing a finished checkpoint
directory into a run and pruning old ones."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable

CHECKPOINT_DIR_RE = re.compile(r"^checkpoint_(\d+)$")


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
