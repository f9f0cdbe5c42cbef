"""central.batching.fill_batch: what a stage takes from its queue, and when it lingers for more."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from central.batching import fill_batch


@pytest.mark.parametrize(
    ("first", "waiting", "most", "expected"),
    [
        ([], [1, 2], 10, []),  # no first item: nothing is taken
        ([0], [], 10, [0]),  # a lone item goes on its own
        ([0], [1, 2, 3], 10, [0, 1, 2, 3]),  # what waits is taken
        ([0], [1, 2, 3], 2, [0, 1]),  # up to `most`
        ([0, 1], [], 2, [0, 1]),  # already full
    ],
)
def test_fill_takes_what_waits(first: list[int], waiting: list[int], most: int, expected: list[int]) -> None:
    inbox: queue.Queue[int] = queue.Queue()
    for item in waiting:
        inbox.put(item)
    assert fill_batch(inbox, list(first), most, linger_s=0.0) == expected


def test_a_lone_item_is_never_held_back() -> None:
    inbox: queue.Queue[int] = queue.Queue()
    t0 = time.monotonic()
    assert fill_batch(inbox, [0], 10, linger_s=5.0) == [0]
    assert time.monotonic() - t0 < 1.0


def test_under_load_it_lingers_for_late_items_then_stops() -> None:
    inbox: queue.Queue[int] = queue.Queue()
    inbox.put(1)  # more than one was waiting: under load
    late = threading.Timer(0.05, inbox.put, args=(2,))
    late.start()
    try:
        assert fill_batch(inbox, [0], 10, linger_s=0.5) == [0, 1, 2]  # waits its linger, not forever
    finally:
        late.cancel()
