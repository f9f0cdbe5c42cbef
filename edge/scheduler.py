"""Which camera's frame the model analyses next: fair across cameras, every frame's age bounded.

Readers deliver frames at each camera's own rate; the model runs each camera at its `detect_fps`. The
scheduler keeps at most one pending frame per camera: the newest one (latest frame wins, so memory never
grows and a detection never looks at an old picture when a newer one is there). A worker that asks gets
the pending frame that has waited longest among the cameras no other worker holds: oldest first, so a
busy camera (or one listed first in the config) cannot starve a quiet one. A pending frame older than
`max_age_periods` detect periods is dropped instead of analysed: a late detection is worth less than the
next fresh frame, and a bounded age keeps the rules' timers and the stream's real time honest.

Only policy drops are counted, per camera: a due frame replaced by a newer due frame before a worker was
free (`replaced`, one detection slot missed) and a frame that grew too old (`stale`). Frames that are not
due (a 25 fps camera analysed at 5 fps) are subsampling, not drops.

Pure logic with time passed in, so the tests are tables without sleeping; the pipeline owns the threads
and holds one lock around every call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edge.records import Frame


def due(t: float, period: float, last_t: dict[str, float], camera: str) -> bool:
    """Whether a frame at `t` (the frame's own clock) opens a new detection slot of `camera`.

    Slots advance by whole periods, so a 12.5 fps clip analysed at 5 fps alternates 2 and 3 frames
    apart and keeps 5 fps on average; after a gap of more than two periods the slots restart at `t`.
    Updates `last_t` when the frame is due.
    """
    prev = last_t.get(camera)
    if prev is not None and t - prev < period * 0.999:
        return False
    last_t[camera] = t if prev is None or t - prev > 2 * period else prev + period
    return True


def slot_filter(detect_fps: float) -> Callable[[float], bool]:
    """`due` for one camera on its own slots: a reader's `keep` (edge.capture.sources), so a frame that
    opens no detection slot is only grabbed, never converted, copied or handed to the scheduler.

    The scheduler applies `due` again to what it is offered; on the frames this filter kept that gives
    the same slots, so both agree on which frames are due.
    """
    period = 1.0 / detect_fps
    last_t: dict[str, float] = {}
    return lambda t: due(t, period, last_t, "")


@dataclass
class QueueStats:
    """Per-camera counters of the scheduler (cumulative)."""

    offered: int = 0  # frames seen
    accepted: int = 0  # frames that opened a detection slot
    analysed: int = 0  # frames handed to a worker
    replaced: int = 0  # due frames replaced by a newer due frame before a worker was free
    stale: int = 0  # frames dropped for being older than max_age_periods detect periods

    @property
    def dropped(self) -> int:
        return self.replaced + self.stale


@dataclass(frozen=True, slots=True)
class Pending:
    """A frame waiting for a worker, with the monotonic time its reader delivered it."""

    frame: Frame
    arrived: float

    @property
    def camera(self) -> str:
        return self.frame.camera


class FrameScheduler:
    """One pending frame per camera, handed out oldest first to workers; see the module docstring."""

    def __init__(self, detect_fps: Mapping[str, float], max_age_periods: float = 2.0) -> None:
        if max_age_periods <= 0:
            raise ValueError("max_age_periods must be > 0")
        self._period = {cam: 1.0 / fps for cam, fps in detect_fps.items()}
        self.max_age_periods = max_age_periods
        self._slots: dict[str, float] = {}
        self._pending: dict[str, Pending] = {}
        self._busy: set[str] = set()
        self.stats = {cam: QueueStats() for cam in detect_fps}

    def period(self, camera: str) -> float:
        return self._period[camera]

    def offer(self, frame: Frame, arrived: float) -> bool:
        """A new frame of its camera; True when it is now the camera's pending frame."""
        cam = frame.camera
        st = self.stats[cam]
        st.offered += 1
        slot = due(frame.t, self._period[cam], self._slots, cam)
        if slot:
            st.accepted += 1
        held = self._pending.get(cam)
        if held is None and not slot:
            return False
        if held is not None and slot:
            st.replaced += 1  # the held frame's slot is lost; the newer frame takes the new slot
        self._pending[cam] = Pending(frame, arrived)  # within a slot the fresher picture wins, uncounted
        return True

    def expire(self, now: float) -> list[str]:
        """Drop pending frames older than their camera's bound; returns the cameras concerned."""
        old = [
            cam
            for cam, p in self._pending.items()
            if now - p.arrived > self.max_age_periods * self._period[cam]
        ]
        for cam in old:
            del self._pending[cam]
            self.stats[cam].stale += 1
        return old

    def take(self, now: float) -> Pending | None:
        """The oldest pending frame of a camera no worker holds (that camera is now held), or None."""
        self.expire(now)
        free = [p for cam, p in self._pending.items() if cam not in self._busy]
        if not free:
            return None
        pick = min(free, key=lambda p: p.arrived)
        del self._pending[pick.camera]
        self._busy.add(pick.camera)
        self.stats[pick.camera].analysed += 1
        return pick

    def release(self, camera: str) -> None:
        """The worker holding `camera` is done with its frame."""
        self._busy.discard(camera)

    def busy(self, camera: str) -> bool:
        """Whether a worker holds `camera` now."""
        return camera in self._busy

    def has_pending(self, camera: str) -> bool:
        return camera in self._pending

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing being analysed."""
        return not self._pending and not self._busy
