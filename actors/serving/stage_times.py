"""Where a request's time goes inside the ingress: each POST /v1/avatars request's time per
stage (reading the body, decoding and framing the photo, each call to another deployment,
encoding the answer), kept for a bounded window of recent requests and summarised as median
and mean milliseconds per stage. Plain Python: no Ray."""
from __future__ import annotations

import statistics
import time
from collections import deque


class Stopwatch:
    """Laps of one request: `lap(stage)` charges the time since the last lap to `stage`."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self.last
        self.last = now

    def done(self) -> dict[str, float]:
        """The stages in seconds, plus 'total' (the request's whole time in the ingress)."""
        return {**self.stages, "total": time.perf_counter() - self.start}


class StageTimes:
    """The stage times of the last `window` requests."""

    def __init__(self, window: int = 4096) -> None:
        self._rows: deque[dict[str, float]] = deque(maxlen=window)

    def record(self, stages: dict[str, float]) -> None:
        self._rows.append(stages)

    def reset(self) -> None:
        self._rows.clear()

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"n": requests that had it, "p50_ms", "mean_ms"}}, stages in the order
        requests first met them."""
        names: dict[str, None] = {}
        for row in self._rows:
            names.update(dict.fromkeys(row))
        out = {}
        for name in names:
            ms = [row[name] * 1e3 for row in self._rows if name in row]
            out[name] = {"n": len(ms), "p50_ms": statistics.median(ms),
                         "mean_ms": statistics.fmean(ms)}
        return out


__all__ = ["StageTimes", "Stopwatch"]
