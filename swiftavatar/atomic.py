"""Atomic writes, for local paths and `pyarrow.fs` filesystems alike (no torch, no Ray).

Every file the project writes appears whole or not at all: it is written under a temporary
name in its own directory (`.<name>.tmp-<random>`) and renamed into place, and the temporary
is deleted when the write fails or is interrupted. Readers see the old file or the new one.
A writer killed outright (SIGKILL, a node lost) can leave a temporary behind;
`remove_temporaries` clears them, and `is_temporary` tells them apart from finished files.

Paths are local paths, or URIs (s3://bucket/key, gs://...) resolved with `resolve`; a
function given `fs` takes `path` as that filesystem's path. On object stores a "rename" is a
copy, so there the guarantee is the store's: a reader sees no partial object.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import pyarrow.fs as pafs

TMP_MARK = ".tmp-"


# ---- paths and filesystems --------------------------------------------------------------
def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path or a URI such as s3://bucket/prefix."""
    if "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path.rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def temp_name(name: str) -> str:
    """A temporary file name beside `name`, unique per writer."""
    return f".{name}{TMP_MARK}{uuid.uuid4().hex[:12]}"


def is_temporary(name: str) -> bool:
    return name.startswith(".") and TMP_MARK in name


def _split(path: str | Path, fs: pafs.FileSystem | None) -> tuple[pafs.FileSystem | None, str]:
    """(None, local path) or (fs, fs path) for where a write goes."""
    if fs is not None:
        return fs, str(path)
    path = str(path)
    if "://" in path:
        return resolve(path)
    return None, path


# ---- files ------------------------------------------------------------------------------
def write_with(path: str | Path, write: Callable[[str], object], *,
               fs: pafs.FileSystem | None = None) -> None:
    """`write(tmp)` writes the file at the temporary path `tmp` (a local path, or a path on
    `fs`); it is then renamed onto `path`. The parent directory is created. An OSError that
    names no file (a full disk) is raised again naming `path`."""
    fs, path = _split(path, fs)
    try:
        _write_with(path, write, fs)
    except OSError as e:
        if e.filename is not None or not e.errno:
            raise
        raise type(e)(e.errno, (e.strerror or str(e)).strip(), path) from e


def _write_with(path: str, write: Callable[[str], object],
                fs: pafs.FileSystem | None) -> None:
    if fs is None:
        local = Path(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = str(local.with_name(temp_name(local.name)))
        try:
            write(tmp)
            os.replace(tmp, local)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return
    head, _, name = path.rpartition("/")
    tmp = f"{head}/{temp_name(name)}"
    fs.create_dir(head, recursive=True)
    try:
        write(tmp)
        fs.move(tmp, path)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        raise


def write_bytes(path: str | Path, data: bytes, *, fs: pafs.FileSystem | None = None) -> None:
    fs, path = _split(path, fs)
    if fs is None:
        write_with(path, lambda tmp: Path(tmp).write_bytes(data))
    else:
        def put(tmp: str) -> None:
            with fs.open_output_stream(tmp) as f:
                f.write(data)
        write_with(path, put, fs=fs)


def write_text(path: str | Path, text: str, *, fs: pafs.FileSystem | None = None) -> None:
    write_bytes(path, text.encode("utf-8"), fs=fs)


def json_text(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """The project's JSON file format: indented, keys sorted, a final newline."""
    return json.dumps(obj, indent=2, sort_keys=True, default=default) + "\n"


def write_json(path: str | Path, obj: Any, *, fs: pafs.FileSystem | None = None,
               default: Callable[[Any], Any] | None = None) -> None:
    write_text(path, json_text(obj, default), fs=fs)


def torch_save(path: str | Path, obj: Any) -> None:
    """torch.save(obj) to a local path, atomically."""
    import torch

    write_with(path, lambda tmp: torch.save(obj, tmp))


# ---- directories ------------------------------------------------------------------------
def write_dir(dest: str | Path, fill: Callable[[Path], object], *,
              replace: bool = True) -> bool:
    """Build a local directory whole: `fill(tmp)` fills the empty directory `tmp` beside
    `dest`, which is then renamed onto `dest`. With replace=False an existing `dest` is kept
    (another writer finished first) and False is returned."""
    dest = Path(dest)
    tmp = dest.with_name(temp_name(dest.name))
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        if dest.exists():
            if not replace:
                return False
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_dir(src: str | Path, dest: str | Path) -> None:
    """Copy the directory `src` to `dest`, which ends up whole (replaced) or unchanged."""
    write_dir(dest, lambda tmp: shutil.copytree(src, tmp, dirs_exist_ok=True))


def remove_temporaries(directory: str, *, fs: pafs.FileSystem | None = None) -> int:
    """Delete the temporaries interrupted writers left in `directory` (not below it);
    returns how many. Only safe while no other writer works in the same directory."""
    fs, directory = _split(directory, fs)
    fs = fs or pafs.LocalFileSystem()
    if fs.get_file_info(directory).type != pafs.FileType.Directory:
        return 0
    n = 0
    for f in fs.get_file_info(pafs.FileSelector(directory)):
        if is_temporary(f.base_name):
            if f.type == pafs.FileType.Directory:
                fs.delete_dir(f.path)
            else:
                fs.delete_file(f.path)
            n += 1
    return n


__all__ = ["TMP_MARK", "copy_dir", "is_temporary", "join", "json_text", "remove_temporaries",
           "resolve", "temp_name", "torch_save", "write_bytes", "write_dir", "write_json",
           "write_text", "write_with"]
