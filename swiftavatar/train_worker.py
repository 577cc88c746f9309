"""What every Ray Train worker function here does first (generator, estimator, sweep trial):
its rank and world size, its torch threads and device, and the checkpoint to resume from.
Ray is imported inside the functions, so importing this module starts nothing."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

META_FILE = "meta.json"          # both checkpoint formats keep their progress counters here


def worker_context(torch_threads: int, use_gpu: bool) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this Ray Train worker, after setting its torch threads
    (0: leave what Ray set). A GPU run on a worker without CUDA falls back to the CPU."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    if torch_threads:
        torch.set_num_threads(torch_threads)
    device = torch.device("cpu")
    if use_gpu:
        if torch.cuda.is_available():
            device = ray.train.torch.get_device()
        else:
            sys.stdout.write("use_gpu is set but this worker sees no CUDA device: training on "
                             "the CPU\n")
    return ctx.get_world_rank(), ctx.get_world_size(), device


def resume_payload(read: Callable[[str], Mapping[str, Any]], counter: str,
                   resume_from: str | None = None) -> Mapping[str, Any] | None:
    """The checkpoint to continue from: the newer (by the payload's `counter`, "step" or
    "epoch") of Ray's own (this run's, or the previous run's) and `resume_from`, the newest
    one the driver found in the run directory. They differ when a driver was killed after a
    checkpoint was written but before Ray recorded it, or when fit_in_process wrote it."""
    import ray.train

    resume = None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            resume = read(d)
    if resume_from and (resume is None
                        or _counter_of(resume_from, counter) > int(resume[counter])):
        resume = read(resume_from)
    return resume


def _counter_of(checkpoint_dir: str, counter: str) -> int:
    meta = Path(checkpoint_dir) / META_FILE
    return int(json.loads(meta.read_text())[counter]) if meta.is_file() else -1


__all__ = ["resume_payload", "worker_context"]
