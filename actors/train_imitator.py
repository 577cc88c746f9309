"""Imitator training on Ray Train (F2P's imitator on an engine's renders): data-parallel over
`num_workers` workers, each reading its share of the render stage's Parquet rows through Ray
Data (`swiftavatar.imitator.data`) and running `swiftavatar.imitator.loop.train_loop_per_worker`
through actors.trainer.fit_trainer, like the estimator and the generators.

A run lives in one directory (`out`, a swiftavatar.rundir.RunDir: one driver at a time):
config.json, train/checkpoint_<epoch>/, then the held-out report in summary.json (L1 and
LPIPS to held-out renders, with standard errors) and samples.png. Running again with the same
`out` resumes from the last checkpoint; only config.IDENTITY_FIELDS must match, so `epochs`
can grow.
"""
from __future__ import annotations

import os
import time
from typing import Any

from swiftavatar.imitator.checkpoint import (CONFIG_FILE, RAY_RUN_NAME, SAMPLES_FILE,
                                             SUMMARY_FILE, list_checkpoints, load_imitator)
from swiftavatar.imitator.config import IDENTITY_FIELDS, ImitatorTrainConfig
from swiftavatar.imitator.data import (RowFilter, build_render_dataset, count_rows,
                                       load_renders, open_renders)
from swiftavatar.estimator.local import resolve_config   # the same rule for `out` and paths
from swiftavatar.rundir import RunDir


class ImitatorTrainingError(RuntimeError):
    """Training stopped; finished checkpoints are kept and a re-run resumes from the last."""


def plan_data(cfg: ImitatorTrainConfig) -> dict[str, Any]:
    """{kind, directory, engine, rows_train, rows_val}; refuses too few rows to train or to
    report on, naming the flag to change."""
    source = open_renders(cfg.data)
    n_train = count_rows(source, RowFilter("train", True, cfg.val_fraction))
    n_val = count_rows(source, RowFilter("val", True, cfg.val_fraction))
    if n_train < cfg.batch:
        raise ValueError(f"{cfg.data} gives {n_train} training renders, fewer than one batch "
                         f"({cfg.batch}): render more or lower --batch")
    if n_val == 0:
        raise ValueError(f"{cfg.data} leaves no held-out render at --val-fraction "
                         f"{cfg.val_fraction:g}: render more or raise --val-fraction")
    return {"kind": source.kind, "directory": source.directory,
            "engine": source.schema.engine, "rows_train": n_train, "rows_val": n_val}


def run_imitator_training(cfg: ImitatorTrainConfig,
                          ray_address: str | None = None) -> dict[str, Any]:
    """Train (or resume) the run `cfg` describes on the running Ray instance (else the one at
    `ray_address`, else a local one), then write the held-out report. Returns the summary
    (also OUT/summary.json): out, epoch, epochs, step, metrics, report, checkpoint, samples,
    data, wall_s."""
    t0 = time.perf_counter()
    cfg = resolve_config(cfg)
    rd = RunDir(cfg.out, "train-imitator")
    with rd.lock():
        data_info = plan_data(cfg)
        rd.check_identity(CONFIG_FILE, cfg.to_dict(), keys=IDENTITY_FIELDS, fix="use a new --out")
        _fit(cfg, data_info, ray_address)
        summary = write_report(cfg, data_info)
        summary["wall_s"] = round(time.perf_counter() - t0, 3)
        rd.write_json(SUMMARY_FILE, summary, default=str)
        return summary


def _fit(cfg: ImitatorTrainConfig, data_info: dict[str, Any], ray_address: str | None):
    from actors.resources import check_training_resources
    from actors.session import ray_session
    from actors.trainer import fit_trainer, quiet_ray_data
    from swiftavatar.imitator.loop import train_loop_per_worker

    source = open_renders(cfg.data)
    size = cfg.model.image_size
    with ray_session(ray_address, log_dir=cfg.out, relay=("[train-imitator] ",)):
        check_training_resources(cfg)
        quiet_ray_data()
        datasets = {k: build_render_dataset(source, RowFilter(k, True, cfg.val_fraction),
                                            size=size, cpus=cfg.data_cpus,
                                            shuffle_files=k == "train")
                    for k in ("train", "val")}
        if _fits_in_memory(cfg, data_info["rows_train"] + data_info["rows_val"], size):
            datasets = {k: (ds.materialize().randomize_block_order() if k == "train"
                            else ds.materialize()) for k, ds in datasets.items()}
        found = list_checkpoints(cfg.out)
        loop_config = {"run": cfg.to_dict(), "engine_schema": source.schema.to_json(),
                       "resume_from": str(found[max(found)]) if found else None,
                       "data": data_info}
        return fit_trainer(train_loop_per_worker, loop_config, cfg, datasets,
                           name=RAY_RUN_NAME, error=ImitatorTrainingError,
                           what="imitator training")


def _fits_in_memory(cfg: ImitatorTrainConfig, rows: int, size: int) -> bool:
    import ray

    need_mb = rows * (size * size * 3 + 512) / 2 ** 20
    store_mb = ray.available_resources().get("object_store_memory", 0.0) / 2 ** 20
    return need_mb <= min(cfg.materialize_mb, store_mb / 2)


def write_report(cfg: ImitatorTrainConfig, data_info: dict[str, Any]) -> dict[str, Any]:
    """Score the newest checkpoint on the held-out renders (swiftavatar.imitator.report) and
    write samples.png; returns the summary without wall_s."""
    from swiftavatar.imitator.report import accuracy_report, sample_sheet
    from swiftavatar.viz import save_png

    found = list_checkpoints(cfg.out)
    if not found:
        raise ImitatorTrainingError(f"{cfg.out}: training wrote no checkpoint; re-run the "
                                    f"same command")
    model, _, meta = load_imitator(found[max(found)])
    rows = load_renders(open_renders(cfg.data), RowFilter("val", True, cfg.val_fraction),
                        size=cfg.model.image_size)
    lpips = None
    if cfg.report_lpips:
        from swiftavatar.metrics import build_lpips

        lpips = build_lpips()
    report = accuracy_report(model, rows, lpips)
    if lpips is not None:
        report["lpips_backbone"] = lpips.info.get("backbone")
    samples = None
    if cfg.samples:
        samples = str(save_png(sample_sheet(model, rows, cfg.samples),
                               os.path.join(cfg.out, SAMPLES_FILE)))
    return {"out": cfg.out, "epoch": int(meta["epoch"]), "epochs": cfg.epochs,
            "step": int(meta["step"]), "metrics": meta.get("metrics") or {},
            "report": report, "checkpoint": str(found[max(found)]), "samples": samples,
            "data": data_info}


__all__ = ["ImitatorTrainingError", "plan_data", "resolve_config", "run_imitator_training",
           "write_report"]
