"""Loading a torch checkpoint without running code from it.

`torch.load(weights_only=True)` unpickles tensors and plain containers only. What it refuses
is told apart here, in one line a user can act on: a file that is not a torch.save archive at
all (or a damaged one), and one that holds pickled Python objects, which are refused on
purpose (unpickling them can run any code the file's author chose).
"""
from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

PICKLE_PROTO = b"\x80"  # a pickle of protocol 2 or later starts with this byte
NOT_ZIP = "not a torch.save zip archive, or a truncated one"


def safe_torch_load(file: str | Path, expected: str, error: Callable[[str], Exception],
                    allow: Sequence[type] = ()) -> Any:
    """torch.load(file) onto the CPU with weights_only=True (plus the classes `allow`). A file
    that does not load raises `error(message)`: one line naming the file, what is wrong and
    `expected` (what the file should be, e.g. "a checkpoint written by `swiftavatar ...`")."""
    import torch

    try:
        with torch.serialization.safe_globals(list(allow)), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. on a plain pickle's protocol
            return torch.load(file, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # the file system's own one-line message (swiftavatar.cli)
    except pickle.UnpicklingError:
        if zipfile.is_zipfile(file) or _starts_with(file, PICKLE_PROTO):
            raise error(f"{file}: refused, it holds pickled Python objects: a pickled checkpoint "
                        f"can run code when loaded, so none is loaded, on purpose; expected "
                        f"{expected}") from None
        why = NOT_ZIP
    except Exception as err:  # noqa: BLE001 - any other unreadable file: the same clear error
        why = _first_sentence(err) if zipfile.is_zipfile(file) else NOT_ZIP
    raise error(f"{file}: not a loadable checkpoint ({why}); expected {expected}")


def _starts_with(file: str | Path, prefix: bytes) -> bool:
    with open(file, "rb") as f:
        return f.read(len(prefix)) == prefix


def _first_sentence(err: BaseException) -> str:
    """'Type: the message's first sentence' (torch's messages go on with advice)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text.split('. ')[0].rstrip('.')}" if text else \
        type(err).__name__


__all__ = ["safe_torch_load"]
