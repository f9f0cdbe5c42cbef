"""Helpers every test module may use; the one `wait_for` for anything the tests poll."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    predicate: Callable[[], object], timeout_s: float = 10.0, what: str = "", interval_s: float = 0.02
) -> float:
    """Poll `predicate` until it is true; returns the seconds it took (always > 0, so `assert wait_for(...)`
    reads naturally) and raises AssertionError naming `what` when `timeout_s` passes first."""
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        if predicate():
            return max(time.monotonic() - start, 1e-9)
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    if predicate():  # one last look: the condition may have come true during the last sleep
        return max(time.monotonic() - start, 1e-9)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or 'the condition'}")
