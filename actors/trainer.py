"""The one way a training run reaches Ray Train: `fit_trainer` builds the `TorchTrainer` of a
model's `train_loop_per_worker` from its run config and fits it. The generator's run
(actors.train_generator), the estimator's (actors.train_estimator) and a sweep trial's
estimator (tune.trial, through actors.train_estimator.fit_estimator) all call it; a trial only
adds Ray Train callbacks (`TuneReportCallback`) and its validation hook in the loop config.

The run lives in cfg.out/<name>/ (Ray Train V2 resumes a run by its name and storage path).
"""
from __future__ import annotations

import gc
import signal
import threading
from typing import Any, Callable, Protocol

class RunResources(Protocol):
    """The fields of GanTrainConfig and EstimatorTrainConfig that place and keep a run."""

    out: str
    num_workers: int
    use_gpu: bool
    cpus_per_worker: float
    gpus_per_worker: float
    max_failures: int
    keep_checkpoints: int


def fit_trainer(loop: Callable[[dict], None], loop_config: dict[str, Any], cfg: RunResources,
                datasets: dict[str, Any], *, name: str, callbacks: list | tuple = (),
                error: type[Exception] | None = None, what: str = "training"):
    """Train `loop` on cfg.num_workers Ray Train workers into cfg.out/`name` (the checkpoint
    module's RAY_RUN_NAME) and return the `ray.train.Result`. `datasets` is emptied when the
    run ends, so no dataset outlives it (a traceback would keep the caller's). With `error`, a
    failed run raises error("<what> failed (<why>); checkpoints so far are kept in ..., re-run
    the same command to resume"); without, Ray's TrainingFailedError passes (Tune's trial)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    resources = {"CPU": cfg.cpus_per_worker}
    if cfg.use_gpu:
        resources["GPU"] = cfg.gpus_per_worker
    trainer = TorchTrainer(
        loop,
        train_loop_config=loop_config,
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=name, storage_path=cfg.out, callbacks=list(callbacks),
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.keep_checkpoints)),
        datasets=dict(datasets))
    previous_sigint = (signal.getsignal(signal.SIGINT)
                       if threading.current_thread() is threading.main_thread() else None)
    try:
        return trainer.fit()
    except ray.train.TrainingFailedError as err:
        if error is None:
            raise
        raise error(f"{what} failed ({_first_line(err)}); checkpoints so far are kept in "
                    f"{cfg.out}/{name}, re-run the same command to resume") from err
    finally:
        # fit() installs a SIGINT handler holding the controller actor's handle, which would
        # keep the controller (and the data actors it owns) alive: put the previous handler
        # back and collect the trainer and the datasets.
        if previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)
        del trainer
        datasets.clear()
        gc.collect()


def quiet_ray_data() -> None:
    """No Ray Data progress bars or execution banners in this process (a training run's rank 0
    prints its own lines)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


__all__ = ["RunResources", "fit_trainer", "quiet_ray_data"]
