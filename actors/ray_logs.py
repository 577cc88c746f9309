"""Where Ray's own output goes: the run directory's log file, not the user's terminal.

A command that starts or joins Ray shows the user its progress bars, one line per stage and
its results. Everything Ray prints besides goes to RUN/logs/ray.log: the lines of Ray's Python
loggers ('ray', 'ray.data', 'ray.train', 'ray.tune', ...), the stdout and stderr of workers
and actors that Ray forwards to the driver, and what Ray's C++ core writes to the driver's
stderr. The terminal's first line says where the file is; a failure prints the file's last
lines (this run's) to stderr, with its path. With `SWIFTAVATAR_VERBOSE=1` (each Ray
command's --verbose) the terminal shows all of it as before, and the file gets a copy.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable

VERBOSE_ENV = "SWIFTAVATAR_VERBOSE"
LOG_FILE = "logs/ray.log"
TAIL_LINES = 40
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")          # colour codes Ray puts in messages


def verbose() -> bool:
    """Whether Ray's output stays on the terminal too (`SWIFTAVATAR_VERBOSE` set and not 0)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def log_path(run_dir: str | Path | None) -> Path:
    """The log file of a run: RUN/logs/ray.log for a local run directory, else (an object
    store URI, or none) a file of this process in the temp directory."""
    if run_dir is not None and "://" not in str(run_dir):
        return Path(run_dir) / LOG_FILE
    return Path(tempfile.gettempdir()) / f"swiftavatar-ray-{os.getpid()}.log"


class RayLog:
    """Ray's output into `path` for the life of one Ray session: `start()` before ray.init,
    `close()` after ray.shutdown (it puts everything back). Worker lines that start with one
    of `relay` (a training run's own progress lines, printed by its rank 0) are shown on the
    terminal as well, without Ray's prefix."""

    def __init__(self, path: str | Path, *, loud: bool | None = None,
                 relay: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.loud = verbose() if loud is None else loud
        self.relay = tuple(relay)      # worker lines starting so are ours: on the terminal too
        self._file: IO[str] | None = None
        self._start = 0
        self._saved_handlers: list[tuple[logging.Logger, list[logging.Handler]]] = []
        self._handler: logging.Handler | None = None
        self._saved_data: tuple[Any, ...] | None = None
        self._saved_fd: int | None = None
        self._saved_stderr: Any = None
        self._ray_printer: Callable[..., None] | None = None

    # ---- life -----------------------------------------------------------------------
    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        self._start = self._file.tell()
        self._file.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: "
                         f"{' '.join(sys.argv)}\n")
        self._route_loggers()
        self._route_worker_lines()
        if not self.loud:
            self._quiet_ray_data()
            self._route_native_stderr()
        print(f"logs: {self.path}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._ray_printer is not None:
            import ray._private.worker as ray_worker

            ray_worker.print_worker_logs = self._ray_printer
            self._ray_printer = None
        self._restore_native_stderr()
        for logger, handlers in self._saved_handlers:
            if self._handler is not None:
                logger.removeHandler(self._handler)
            for h in handlers:
                logger.addHandler(h)
        self._saved_handlers.clear()
        if self._saved_data is not None:
            import ray.data

            ctx = ray.data.DataContext.get_current()
            (ctx.enable_progress_bars, ctx.print_on_execution_start,
             ctx.enable_auto_log_stats) = self._saved_data
            self._saved_data = None
        if self._file is not None:
            self._file.close()
            self._file = None

    # ---- failure --------------------------------------------------------------------
    def tail(self, n: int = TAIL_LINES) -> list[str]:
        """The last `n` lines this session wrote to the file."""
        if self._file is not None:
            self._file.flush()
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                f.seek(self._start)
                lines = f.read().splitlines()
        except OSError:
            return []
        return lines[-n:]

    def print_tail(self, n: int = TAIL_LINES) -> None:
        """The file's last lines on stderr, with its path (a failure's context)."""
        lines = self.tail(n)
        out = sys.stderr
        print(f"Ray log, last {len(lines)} lines of {self.path}:", file=out)
        for line in lines:
            print(f"  {line}", file=out)
        out.flush()

    # ---- the parts --------------------------------------------------------------------
    def _route_loggers(self) -> None:
        """Every 'ray' logger with handlers of its own ('ray', 'ray.data' and any other that
        does not propagate) writes to the file; unless loud, no longer to the terminal."""
        import ray.data  # noqa: F401 - 'ray' and 'ray.data' configure their loggers on import

        handler = logging.StreamHandler(self._file)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.setLevel(logging.INFO)       # Ray Data's DEBUG lines stay in Ray's own files
        self._handler = handler
        names = ["ray"] + sorted(n for n in logging.root.manager.loggerDict
                                 if n.startswith("ray."))
        for name in names:
            logger = logging.getLogger(name)
            if not logger.handlers and name != "ray":
                continue
            terminal = [h for h in logger.handlers if _is_terminal(h)]
            if not self.loud:
                for h in terminal:
                    logger.removeHandler(h)
            self._saved_handlers.append((logger, terminal if not self.loud else []))
            logger.addHandler(handler)

    def _route_worker_lines(self) -> None:
        """What Ray forwards to the driver (workers' and actors' stdout and stderr, the
        raylet's error messages) reaches the terminal through
        ray._private.worker.print_worker_logs: this session's printer stands in for it."""
        import ray._private.worker as ray_worker

        self._ray_printer = ray_worker.print_worker_logs
        ray_worker.print_worker_logs = self._print_worker_logs

    def _quiet_ray_data(self) -> None:
        """No Ray Data progress bars, execution banners or stats on the driver (our bars)."""
        import ray.data

        ctx = ray.data.DataContext.get_current()
        self._saved_data = (ctx.enable_progress_bars, ctx.print_on_execution_start,
                            ctx.enable_auto_log_stats)
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.enable_auto_log_stats = False

    def _route_native_stderr(self) -> None:
        """Ray's C++ core logs errors straight to file descriptor 2: point it at the file,
        and Python's sys.stderr (our bars, messages, tracebacks) at the terminal it was."""
        try:
            if sys.stderr is None or sys.stderr.fileno() != 2:
                return                     # stderr is not the process's (e.g. captured)
        except (AttributeError, OSError, ValueError):
            return
        assert self._file is not None
        sys.stderr.flush()
        self._saved_fd = os.dup(2)
        self._saved_stderr = sys.stderr
        sys.stderr = os.fdopen(os.dup(self._saved_fd), "w", buffering=1,
                               encoding=self._saved_stderr.encoding,
                               errors=self._saved_stderr.errors)
        os.dup2(self._file.fileno(), 2)

    def _restore_native_stderr(self) -> None:
        if self._saved_fd is None:
            return
        try:
            sys.stderr.flush()
        finally:
            ours, sys.stderr = sys.stderr, self._saved_stderr
            os.dup2(self._saved_fd, 2)
            os.close(self._saved_fd)
            self._saved_fd = None
            ours.close()

    def _print_worker_logs(self, data: dict[str, Any], print_file: Any,
                           ignore_prefix: bool = False) -> None:
        """One batch of forwarded lines into the file, prefixed as Ray prints them
        ("(Actor pid=N[, ip=X]) line"); also to the terminal when loud."""
        import ray._private.worker as ray_worker

        f = self._file
        if f is not None:
            who = data.get("pid")
            lines = data.get("lines", [])
            if who == "autoscaler":                  # its events only, as Ray shows them
                lines = list(ray_worker.filter_autoscaler_events(lines))
            elif who != "raylet":
                name = data.get("actor_name") or data.get("task_name")
                who = f"{name} pid={who}" if name else f"pid={who}"
            ip = data.get("ip")
            where = "" if not ip or ip == data.get("localhost") else f", ip={ip}"
            text = "".join(f"({who}{where}) {_ANSI.sub('', line)}\n" for line in lines)
            if self._handler is not None:
                self._handler.acquire()      # one writer at a time with Ray's loggers
            try:
                f.write(text)
            finally:
                if self._handler is not None:
                    self._handler.release()
        if self.loud and self._ray_printer is not None:
            self._ray_printer(data, print_file, ignore_prefix)
        elif self.relay:
            ours = [line for line in data.get("lines", []) if line.startswith(self.relay)]
            if ours:
                out = sys.stderr if data.get("is_err") else sys.stdout
                out.write("".join(f"{line}\n" for line in ours))
                out.flush()


def _is_terminal(handler: logging.Handler) -> bool:
    """A handler writing to the terminal (Ray's PlainRayHandler writes to stdout/stderr)."""
    if type(handler).__name__ == "PlainRayHandler":
        return True
    stream = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and \
        not isinstance(handler, logging.FileHandler) and stream in (
            sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


__all__ = ["LOG_FILE", "TAIL_LINES", "VERBOSE_ENV", "RayLog", "log_path", "verbose"]
