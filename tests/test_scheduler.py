"""The multi-camera scheduler: fairness (oldest first), latest frame wins, bounded age, counted drops.

Synthetic frames and injected time: no sleeping, no threads.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.records import Frame
from edge.scheduler import FrameScheduler, due, slot_filter

_IMAGE = np.zeros((2, 2, 3), np.uint8)


def frame(camera: str, t: float, seq: int = 0) -> Frame:
    return Frame(camera, seq, t, 1.7e9 + t, _IMAGE)


@pytest.mark.parametrize(
    ("times", "period", "expected"),
    [
        ([0.0, 0.1, 0.2, 0.3, 0.4], 0.2, [True, False, True, False, True]),  # 10 fps at 5 fps
        ([0.0, 0.08, 0.16, 0.24, 0.32, 0.40], 0.2, [True, False, False, True, False, True]),  # 12.5 fps
        ([0.0, 0.2, 1.0, 1.1, 1.2], 0.2, [True, True, True, False, True]),  # after a gap, slots restart
        ([0.0, 0.05, 0.1], 0.01, [True, True, True]),  # camera slower than detect_fps: every frame
    ],
)
def test_due_slots(times: list[float], period: float, expected: list[bool]) -> None:
    last: dict[str, float] = {}
    assert [due(t, period, last, "c") for t in times] == expected


@pytest.mark.parametrize(
    ("fps", "detect_fps", "kept"),
    [
        (30.0, 5.0, 10),  # 60 frames in 2 s: 5 a second
        (25.0, 5.0, 10),
        (12.5, 5.0, 10),  # 2 and 3 frames apart in turn
        (4.0, 5.0, 8),  # a camera slower than detect_fps: every frame
    ],
)
def test_slot_filter_keeps_the_frames_the_scheduler_takes_as_due(
    fps: float, detect_fps: float, kept: int
) -> None:
    """The readers' filter and the scheduler agree: every kept frame opens a slot, none is lost."""
    times = [round(i / fps, 6) for i in range(round(2 * fps))]  # two seconds of the camera
    keep = slot_filter(detect_fps)
    kept_times = [t for t in times if keep(t)]
    last: dict[str, float] = {}
    assert kept_times == [t for t in times if due(t, 1.0 / detect_fps, last, "c")]
    assert len(kept_times) == kept
    sched = FrameScheduler({"c": detect_fps})
    for t in kept_times:
        assert sched.offer(frame("c", t), arrived=t)
        assert sched.take(t) is not None
        sched.release("c")
    assert sched.stats["c"].accepted == sched.stats["c"].analysed == kept


def test_oldest_pending_frame_goes_first_whatever_the_camera_order() -> None:
    sched = FrameScheduler({"a": 5.0, "b": 5.0, "c": 5.0})
    sched.offer(frame("c", 0.0), arrived=10.00)
    sched.offer(frame("a", 0.0), arrived=10.02)
    sched.offer(frame("b", 0.0), arrived=10.01)
    order = []
    while (p := sched.take(now=10.05)) is not None:
        order.append(p.camera)
        sched.release(p.camera)
    assert order == ["c", "b", "a"]


def test_a_busy_camera_cannot_starve_a_quiet_one() -> None:
    """Camera `busy` has a new due frame every time a worker asks; `quiet` one frame, offered once.

    Each analysis takes 0.05 s; the quiet frame must be served at the next take, not after busy's.
    """
    sched = FrameScheduler({"busy": 20.0, "quiet": 1.0})
    now = 0.0
    sched.offer(frame("busy", now), arrived=now)
    served = []
    for i in range(1, 6):
        p = sched.take(now)
        assert p is not None
        served.append(p.camera)
        if i == 1:
            sched.offer(frame("quiet", now), arrived=now + 0.001)
        now += 0.05
        sched.offer(frame("busy", now), arrived=now)  # busy's next frame arrives as the analysis ends
        sched.release(p.camera)
    assert served[:3] == ["busy", "quiet", "busy"]
    assert sched.stats["quiet"].analysed == 1
    # busy asks for the whole model: the one slot it lost while quiet was served is counted, by policy
    assert sched.stats["busy"].replaced == 1


def test_a_camera_held_by_a_worker_is_not_given_to_another() -> None:
    sched = FrameScheduler({"a": 5.0, "b": 5.0})
    sched.offer(frame("a", 0.0), arrived=0.0)
    first = sched.take(0.01)
    assert first is not None and first.camera == "a" and sched.busy("a")
    sched.offer(frame("a", 0.2), arrived=0.2)  # a's next frame arrives while a is being analysed
    assert sched.take(0.21) is None  # the second worker must not run camera a concurrently
    sched.release("a")
    second = sched.take(0.22)
    assert second is not None and second.frame.t == 0.2


# (camera frame times, arrival = frame time; take at `now`) -> analysed frame t, replaced, stale
@pytest.mark.parametrize(
    ("times", "now", "analysed_t", "replaced", "stale"),
    [
        ([0.0], 0.1, 0.0, 0, 0),  # one fresh frame
        ([0.0, 0.1], 0.15, 0.1, 0, 0),  # a fresher frame within the same slot wins, uncounted
        ([0.0, 0.2], 0.25, 0.2, 1, 0),  # a newer due frame replaces a waiting due frame: one slot lost
        ([0.0, 0.2, 0.4, 0.6], 0.65, 0.6, 3, 0),  # three slots lost while no worker was free
        ([0.0], 0.39, 0.0, 0, 0),  # just under 2 periods old: analysed
        ([0.0], 0.41, None, 0, 1),  # older than 2 periods: dropped as stale, counted
    ],
)
def test_latest_frame_wins_and_age_is_bounded(
    times: list[float], now: float, analysed_t: float | None, replaced: int, stale: int
) -> None:
    sched = FrameScheduler({"c": 5.0}, max_age_periods=2.0)
    for i, t in enumerate(times):
        sched.offer(frame("c", t, i), arrived=t)
    got = sched.take(now)
    assert (got.frame.t if got is not None else None) == analysed_t
    st = sched.stats["c"]
    assert (st.replaced, st.stale, st.dropped) == (replaced, stale, replaced + stale)
    assert st.offered == len(times)


def test_subsampled_frames_are_not_drops() -> None:
    """A 25 fps camera analysed at 5 fps, served promptly: 4 of 5 frames unused, none counted dropped."""
    sched = FrameScheduler({"c": 5.0})
    analysed = 0
    for i in range(50):
        t = i * 0.04
        sched.offer(frame("c", t, i), arrived=t)
        p = sched.take(t + 0.001)
        if p is not None:
            analysed += 1
            sched.release("c")
    assert analysed == 10
    assert sched.stats["c"].dropped == 0 and sched.stats["c"].accepted == 10


def test_idle_only_when_nothing_pending_or_held() -> None:
    sched = FrameScheduler({"c": 5.0})
    assert sched.idle
    sched.offer(frame("c", 0.0), arrived=0.0)
    assert not sched.idle
    assert sched.take(0.0) is not None
    assert not sched.idle
    sched.release("c")
    assert sched.idle


def test_bad_age_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_age_periods"):
        FrameScheduler({"c": 5.0}, max_age_periods=0)
