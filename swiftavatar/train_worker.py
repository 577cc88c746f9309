"""What every Ray Train worker function here shares (generator, estimator, a sweep trial's
estimator): its rank and world size, its torch threads and device, the checkpoint to resume
from, and the report that hands each result (and checkpoint) to Ray Train. Ray is imported
inside the functions, so importing this module starts nothing."""
from __future__ import annotations

import json
import math
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


def ray_report(metrics: Mapping[str, Any], checkpoint_dir: str | None, counter: int, *,
               dir_name: Callable[[int], str]) -> None:
    """The `report` of a training loop run by Ray Train (every worker calls it; rank 0 passes
    the checkpoint directory it wrote, the others None). Ray copies the directory into the run
    as `dir_name(counter)`. Non-finite values are left out: Tune's schedulers and the results
    table compare numbers, and a NaN in JSON is not one. Bind `dir_name` with
    functools.partial to get the loops' `report(metrics, checkpoint_dir, counter)`."""
    import ray.train

    finite = {k: v for k, v in metrics.items() if not isinstance(v, float) or math.isfinite(v)}
    checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
    ray.train.report(finite, checkpoint=checkpoint, checkpoint_dir_name=dir_name(counter))


def all_reduce_sum(t: torch.Tensor, world_size: int) -> None:
    """Sum `t` in place over the workers of a data-parallel run (nothing for one worker)."""
    if world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)


def mean_over_workers(sums: Mapping[str, float], steps: int, world_size: int,
                      device: torch.device) -> dict[str, float]:
    """An epoch's per-step means of this worker's `sums`, averaged over the workers (every
    worker must call this at the same point)."""
    keys = sorted(sums)
    t = torch.tensor([sums[k] / steps for k in keys], dtype=torch.float64, device=device)
    all_reduce_sum(t, world_size)
    return {k: v / world_size for k, v in zip(keys, t.cpu().tolist())}


def _counter_of(checkpoint_dir: str, counter: str) -> int:
    meta = Path(checkpoint_dir) / META_FILE
    return int(json.loads(meta.read_text())[counter]) if meta.is_file() else -1


__all__ = ["all_reduce_sum", "mean_over_workers", "ray_report", "resume_payload",
           "worker_context"]
