"""Filling a batch from a queue: take what waits now, and under load linger briefly for more.

Why one home: the writer and the signature verifier both pay a fixed price per batch whatever its size
(a few transactions; pickling, a pipe round trip and a worker's wake-up), so a stage that just keeps up
would otherwise pay it per handful of events (measured: docs/benchmarks.md). The rule is the same for
both: a lone event is never held back (a quiet station stays quick); only when more than one was
waiting does the stage wait up to `linger_s` for the batch to fill.
"""

from __future__ import annotations

import queue
import time
from typing import TypeVar

T = TypeVar("T")


def fill_batch(inbox: queue.Queue[T], batch: list[T], most: int, linger_s: float) -> list[T]:
    """Append to `batch` (which holds the first item, if any) what `inbox` has, up to `most` items."""
    deadline: float | None = None
    while batch and len(batch) < most:
        try:
            batch.append(inbox.get_nowait())
            continue
        except queue.Empty:
            pass
        if len(batch) < 2 or linger_s <= 0:
            break
        deadline = deadline if deadline is not None else time.monotonic() + linger_s
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            batch.append(inbox.get(timeout=left))
        except queue.Empty:
            break
    return batch
