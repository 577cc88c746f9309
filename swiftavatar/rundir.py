"""The run directory every stage writes into (no torch, no Ray): its manifest and the identity
check on a re-run, the lock that keeps a second driver out, clearing what interrupted writers
left, verifying finished shards before a resume, and the checkpoint_<n>/ directories of
training runs. Writes go through `swiftavatar.atomic`.

A stage's life in its directory:
    rd = RunDir(out, "render")
    with rd.lock():                     # a second run into `out` is refused, naming our pid
        old = rd.check_identity(MANIFEST, manifest, section="dataset")   # a re-run must match
        rd.remove_temporaries(SHARD_DIR)
        rd.verify_shards(SHARD_DIR, expected_rows)   # damaged shards go to corrupt/, redone
        ... work, each file written atomically ...

`out` is a local path or a `pyarrow.fs` URI (s3://..., gs://...). On a URI everything above
works except the lock: object stores have none, so two drivers into one URI are not kept
apart there (run one driver per output prefix).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import pyarrow.fs as pafs

from swiftavatar import atomic

CHECKPOINT_DIR_RE = re.compile(r"^checkpoint_(\d+)$")
LOCK_FILE = ".lock"
CORRUPT_DIR = "corrupt"
T = TypeVar("T")
_SHARD_RE = re.compile(r"^part-(\d+)\.parquet$")


class RunLockedError(RuntimeError):
    """Another live process is writing into the run directory."""


class RunMismatchError(ValueError):
    """The run directory holds a run with a different identity."""


# ---- the identity of a run --------------------------------------------------------------
def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def identity_diff(old: dict[str, Any], new: dict[str, Any],
                  keys: Iterable[str] | None = None) -> list[str]:
    """'field old -> new' (values as JSON, cut at 60 characters) for each key whose value
    differs between two identity dicts: all keys of both, or only `keys`."""
    def short(v: Any) -> str:
        s = _canon(v)
        return s if len(s) <= 60 else s[:57] + "..."

    names = sorted(set(old) | set(new)) if keys is None else list(keys)
    return [f"{k} {short(old.get(k))} -> {short(new.get(k))}" for k in names
            if _canon(old.get(k)) != _canon(new.get(k))]


# ---- the lock ---------------------------------------------------------------------------
@contextlib.contextmanager
def run_lock(run_dir: str | Path, what: str = "run") -> Iterator[Path]:
    """Hold an exclusive lock on run_dir/.lock while the block runs; a second holder (any
    process, or another open of the same file) gets RunLockedError naming the holder's pid.
    The kernel drops the lock when its holder dies, so a killed driver never blocks a re-run.
    Local directories only (see RunDir.lock for URIs)."""
    run_dir = Path(run_dir)
    ensure_directory(run_dir)
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


def ensure_directory(path: str | Path) -> None:
    """Create the local directory `path` (and its parents), or raise an OSError whose
    `filename` is the path at fault: a file where a directory must be, no permission."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "is a file, not a directory", str(p))
            break
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "not writable", str(path))


# ---- the run directory ------------------------------------------------------------------
class RunDir:
    """One stage's output directory: `out` is a local path or a pyarrow.fs URI. `what` names
    the stage in messages ('render', 'train-generator', ...)."""

    def __init__(self, out: str | Path, what: str = "run",
                 log: Callable[[str], None] | None = None) -> None:
        self.out = str(out)
        self.what = what
        self.local = "://" not in self.out
        self.fs, self.base = atomic.resolve(self.out)
        self._log = log or (lambda text: print(text, file=sys.stderr, flush=True))

    def path(self, *parts: str) -> str:
        return atomic.join(self.base, *parts)

    def create(self) -> None:
        """Make the directory; a path that cannot be one raises OSError naming it."""
        if self.local:
            ensure_directory(self.base)
        else:
            self.fs.create_dir(self.base, recursive=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock (a local directory) for the block; a second driver gets
        RunLockedError naming this process's pid. On a URI there is no lock."""
        self.create()
        if not self.local:
            yield
            return
        with run_lock(self.base, self.what):
            yield

    # ---- files ----------------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def read_json(self, name: str) -> Any | None:
        """The parsed JSON file `name`, or None when there is none."""
        path = self.path(name)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())

    def write_json(self, name: str, obj: Any, default: Callable[[Any], Any] | None = None
                   ) -> None:
        atomic.write_json(self.path(name), obj, fs=self.fs, default=default)

    def delete(self, *names: str) -> None:
        """Delete these files or directories where they exist."""
        for name in names:
            kind = self.fs.get_file_info(self.path(name)).type
            if kind == pafs.FileType.Directory:
                self.fs.delete_dir(self.path(name))
            elif kind == pafs.FileType.File:
                self.fs.delete_file(self.path(name))

    def remove_temporaries(self, *subdirs: str) -> int:
        """Clear what interrupted writers left in these subdirectories (hold the lock)."""
        return sum(atomic.remove_temporaries(self.path(s), fs=self.fs) for s in subdirs)

    # ---- identity -------------------------------------------------------------------
    def check_identity(self, name: str, new: dict[str, Any], *, section: str | None = None,
                       keys: Iterable[str] | None = None, write: bool = True,
                       holds: str = "a different run", fix: str = "use a new --out",
                       error: type[Exception] = RunMismatchError) -> dict[str, Any] | None:
        """Compare the manifest `name` already here (a re-run) with `new`: their `section`
        (or their `keys`, or all of them) must match, else `error` names every field that
        differs ("OUT holds HOLDS (size 256 -> 128); FIX"). Writes `new` when there was
        none (or always with write=True). Returns the old manifest or None."""
        old = self.read_json(name)
        if old is not None:
            a = old.get(section, {}) if section else old
            b = new.get(section, {}) if section else new
            diffs = identity_diff(a, b, keys)
            if diffs:
                raise error(f"{self.out} holds {holds} ({'; '.join(diffs)}); {fix}")
        if old is None or write:
            self.write_json(name, new)
        return old

    # ---- shards ---------------------------------------------------------------------
    def shard_rows(self, sub: str, k: int) -> int:
        """Rows in sub/part-<k>.parquet by its footer; 0 when there is no such file. A
        damaged file raises (pyarrow's ArrowInvalid / OSError)."""
        import pyarrow.parquet as pq

        path = self.path(sub, f"part-{k:05d}.parquet")
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return 0
        with self.fs.open_input_file(path) as f:
            return pq.ParquetFile(f).metadata.num_rows

    def verify_shards(self, sub: str, expected_rows: Callable[[int], int],
                      companions: Iterable[str] = ()) -> list[int]:
        """Check every finished shard sub/part-<k>.parquet before a resume: its footer must
        read and hold `expected_rows(k)` rows (which may itself raise on a damaged companion
        file). A shard that fails is moved, with its companions' part-<k> files (e.g.
        errors/), to corrupt/<sub>/, named in the log, and is redone by the run. Returns
        the shard numbers moved aside."""
        info = self.fs.get_file_info(self.path(sub))
        if info.type != pafs.FileType.Directory:
            return []
        moved = []
        for f in sorted(self.fs.get_file_info(pafs.FileSelector(self.path(sub))),
                        key=lambda f: f.base_name):
            m = _SHARD_RE.match(f.base_name)
            if not m or f.type != pafs.FileType.File:
                continue
            k = int(m.group(1))
            try:
                want = expected_rows(k)
                got = self.shard_rows(sub, k)
                why = None if got == want else f"{got} rows, expected {want}"
            except Exception as e:  # noqa: BLE001 - any unreadable footer is a damaged shard
                why = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
            if why is None:
                continue
            for s in (sub, *companions):
                self._move_aside(s, f.base_name)
            moved.append(k)
            self._log(f"{self.what}: {sub}/{f.base_name} in {self.out} is damaged ({why}): "
                      f"moved to {CORRUPT_DIR}/{sub}/{f.base_name}, it is made again")
        return moved

    def _move_aside(self, sub: str, name: str) -> None:
        src = self.path(sub, name)
        if self.fs.get_file_info(src).type != pafs.FileType.File:
            return
        self.fs.create_dir(self.path(CORRUPT_DIR, sub), recursive=True)
        self.fs.move(src, self.path(CORRUPT_DIR, sub, name))


# ---- checkpoint directories of training runs --------------------------------------------
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
    atomic.copy_dir(src, dest)
    found = existing()
    for old in sorted(found)[:-keep]:
        shutil.rmtree(found[old], ignore_errors=True)


def locked(out: str, what: str, body: Callable[["RunDir"], T]) -> T:
    """`body(run_dir)` while holding `out`'s run lock: a stage's one driver per directory (a
    second is refused with RunLockedError, naming the first's pid)."""
    rd = RunDir(out, what)
    with rd.lock():
        return body(rd)


def find_checkpoint_file(path: str | Path, sub: str, marker: str,
                         none_found: Callable[[str], Exception]) -> Path:
    """The checkpoint file `path` names: the file itself, a checkpoint directory holding
    `marker`, or a run directory (its newest checkpoint_<n>/ in run_dir/sub or run_dir). Raises
    `none_found(message)` naming what was expected."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if (p / marker).is_file():
        return p / marker
    if p.is_dir():
        found = list_checkpoint_dirs(p, sub, marker)
        if found:
            return found[max(found)] / marker
        raise none_found(f"{p} holds no checkpoint (expected {marker}, checkpoint_*/ or "
                         f"{sub}/checkpoint_*/)")
    raise none_found(f"no such checkpoint: {p}")


__all__ = ["CHECKPOINT_DIR_RE", "CORRUPT_DIR", "LOCK_FILE", "RunDir", "RunLockedError",
           "RunMismatchError", "ensure_directory", "find_checkpoint_file", "identity_diff",
           "list_checkpoint_dirs", "locked", "publish_checkpoint", "run_lock"]
