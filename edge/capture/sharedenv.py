"""A process environment variable that concurrent stream opens share without serialising on it.

OpenCV takes FFmpeg's capture options (the RTSP transport) from `OPENCV_FFMPEG_CAPTURE_OPTIONS`, and the
environment is process-wide. A lock held across each open would serialise all of them: an open of a
dead camera blocks up to its timeout, so one dead camera would delay every other camera's (re)connect
and a node with many dead cameras would take minutes to start or stop.

Any number of opens wanting the same value hold it at once; an open wanting another value waits until
they are out, and while it waits no new open of the old value starts (no starvation). By default a
value is held for the whole open: OpenCV itself runs one FFmpeg open at a time behind its own mutex and
reads the variable only once inside, so a shorter hold could let a queued open read another camera's
value; and cameras that do not answer never get this far (edge.capture.probe), so a hold is as long as
a working camera's open. `grace_s` bounds the hold for callers whose opens read the value at once. The
process's own value comes back when the last open is out. Timeouts go to each capture as parameters.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator


class SharedEnv:
    """See the module docstring; `holding(value)` wraps one open."""

    def __init__(self, name: str, grace_s: float | None = None) -> None:
        self.name = name
        self.grace_s = grace_s
        self._cond = threading.Condition()
        self._value: str | None = None
        self._holders: dict[object, float] = {}  # open -> monotonic end of its grace
        self._inside = 0  # opens inside holding(), in grace or not
        self._previous: str | None = None
        self._waiting: collections.Counter[str] = collections.Counter()

    def _in_grace(self, now: float) -> list[float]:
        return [end for end in self._holders.values() if end > now]

    def _may_enter(self, value: str, now: float) -> bool:
        if not self._in_grace(now):
            return True
        others = sum(n for v, n in self._waiting.items() if v != self._value)
        return self._value == value and others == 0

    @contextlib.contextmanager
    def holding(self, value: str) -> Iterator[None]:
        me = object()
        with self._cond:
            self._waiting[value] += 1
            try:
                while not self._may_enter(value, now := time.monotonic()):
                    first_end = min(self._in_grace(now))
                    self._cond.wait(None if math.isinf(first_end) else max(first_end - now, 0.001))
            finally:
                self._waiting[value] -= 1
            if self._inside == 0:
                self._previous = os.environ.get(self.name)
            if self._value != value or self._inside == 0:
                self._value = value
                os.environ[self.name] = value
            self._inside += 1
            self._holders[me] = math.inf if self.grace_s is None else time.monotonic() + self.grace_s
        try:
            yield
        finally:
            with self._cond:
                del self._holders[me]
                self._inside -= 1
                if self._inside == 0:  # the last open out puts back what the process had
                    self._value = None
                    if self._previous is None:
                        os.environ.pop(self.name, None)
                    else:
                        os.environ[self.name] = self._previous
                self._cond.notify_all()
