"""A small scheduler for the aggregator's housekeeping: tasks that run every so many seconds in one
thread of their own.

The service (central/service.py) lists the tasks: WAL checkpoints, the summary log line, the systemd
watchdog, and the hand-off of retention and health sweeps to the writer thread. Keeping the timing here
leaves the writer with ingest alone. A task that raises is logged and counted; the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Task:
    """`run(now)` every `interval_s` seconds, the first time `first_s` after the start."""

    name: str
    interval_s: float
    run: Callable[[float], None]
    first_s: float = 0.0


class Scheduler:
    def __init__(self, tasks: Sequence[Task], tick_s: float = 0.25) -> None:
        self.tasks = tuple(tasks)
        self.tick_s = tick_s
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="central-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        start = time.monotonic()
        due = [start + t.first_s for t in self.tasks]
        while not self._stop.is_set():
            mono = time.monotonic()
            for i, task in enumerate(self.tasks):
                if mono < due[i]:
                    continue
                due[i] = mono + task.interval_s
                try:
                    task.run(time.time())
                except Exception:  # a worker loop logs, counts and goes on
                    self.errors += 1
                    log.exception("housekeeping task %s failed", task.name)
            self._stop.wait(self.tick_s)
