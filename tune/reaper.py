"""Releasing the CPUs of a trial that Tune stopped in the middle of its `TorchTrainer.fit()`.

When ASHA stops a trial, Tune ends the trial's actor; the Ray Train controller it owns dies
with it, before it can remove its worker group's placement group. Ray Train V2 leaves that to a
detached `PlacementGroupCleaner`, which asks the State API whether the controller is alive;
on a Ray instance without the dashboard (tests, `include_dashboard=False`) that API does not
answer and the placement group keeps its CPUs until the cluster stops, so the next trials'
data tasks wait forever. Each trial's rank-0 worker therefore records its placement group in
its run directory, and `PlacementGroupReaper` (a Tune callback on the driver) removes it once
the trial is over, unless it is already gone.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ray.tune import Callback

PG_FILE = ".placement_group"


def record_placement_group(run_dir: str) -> None:
    """Called in a Train worker: write the id of the placement group it runs in."""
    from ray.util import get_current_placement_group

    pg = get_current_placement_group()
    if pg is not None:
        from swiftavatar import atomic

        atomic.write_text(Path(run_dir) / PG_FILE, pg.id.hex() + "\n")


def remove_recorded_placement_group(run_dir: str | Path) -> bool:
    """Remove the placement group recorded in `run_dir` if it still exists; True if removed."""
    import ray
    from ray.util.placement_group import (PlacementGroup, placement_group_table,
                                          remove_placement_group)

    path = Path(run_dir) / PG_FILE
    if not path.is_file():
        return False
    pg = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(path.read_text().strip())))
    try:
        state = placement_group_table(pg).get("state")
        if state in (None, "REMOVED"):
            return False
        remove_placement_group(pg)
    except Exception as e:  # noqa: BLE001 - e.g. removed meanwhile by Ray Train itself
        print(f"[sweep] could not remove placement group {pg.id.hex()}: {e}", file=sys.stderr)
        return False
    return True


class PlacementGroupReaper(Callback):
    """Tune callback: after a trial completes or fails, free its Train placement group."""

    def __init__(self, estimators_dir: str) -> None:
        self.estimators_dir = Path(estimators_dir)
        self.removed: list[str] = []

    def _reap(self, trial: Any) -> None:
        if remove_recorded_placement_group(self.estimators_dir / str(trial.trial_id)):
            self.removed.append(str(trial.trial_id))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._reap(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._reap(trial)


__all__ = ["PG_FILE", "PlacementGroupReaper", "record_placement_group",
           "remove_recorded_placement_group"]
