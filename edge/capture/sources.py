"""Camera sources: read a video file, RTSP, HTTP MJPEG or USB camera on its own thread.

Two ways to read:
- `CameraReader` (live streams, paced files): one thread per camera writes into a one-frame "latest"
  slot. A frame the consumer has not taken when the next one arrives is replaced and counted in
  `dropped_frames`, so a slow detector always sees the newest picture and memory never grows. A camera
  that fails is reopened with capped exponential backoff; nothing raises out of the thread. Stream
  state changes (starting / ok / lost / ended) are kept in a bounded queue for `status_changes()`,
  which the pipeline turns into `stream_lost` / `stream_restored` events (edge.capture.health).
- `iter_file_frames` (edge.capture.files; files read as fast as the consumer goes): every frame, in
  order, on the caller's thread, so `--max-frames`, benchmarks and the counting evaluation are
  deterministic. Opening a source (backend, timeouts, RTSP probe) is edge.capture.opening.

Frozen-picture detection is not done here: it needs picture analysis and lives in edge.capture.health; the
reader reports only whether frames arrive.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edge.camera_config import CameraConfig
from edge.capture.files import Clock, iter_file_frames
from edge.capture.opening import SourceError, camera_source, open_capture, source_kind
from edge.capture.privacy import FrameMasker
from edge.records import Frame

log = logging.getLogger(__name__)

StreamState = Literal["starting", "ok", "lost", "ended"]


@dataclass(frozen=True, slots=True)
class StreamChange:
    """A change of a reader's stream state; `t` monotonic seconds, `ts` wall clock.

    `down_s` is how long the stream was lost, on the change back to `ok`.
    """

    camera: str
    previous: StreamState
    state: StreamState
    t: float
    ts: float
    reason: str = ""
    down_s: float | None = None


@dataclass(frozen=True, slots=True)
class ReaderStats:
    state: StreamState
    frames_read: int
    dropped_frames: int
    reconnects: int
    errors: int
    fps: float


class CameraReader:
    """Reads one camera on its own thread into a one-frame slot; see the module docstring.

    With `drop=False` the thread waits for the consumer instead of replacing an unread frame (every
    frame delivered, e.g. a paced file under test). `wake`, shared by the readers of a node, is set on
    every new frame and state change, so the consumer sleeps until there is work instead of polling.
    `keep`, a predicate on a frame's `t` (the node passes "opens a detection slot"), lets the thread
    only grab the frames nobody will analyse: decoded (the stream needs it), but neither converted to
    BGR, copied, masked nor handed over, and they wake nobody. `frames_read` and `fps` count every
    frame grabbed. `backoff_min_s` doubles after each failed open up to `backoff_max_s`, and returns to
    the minimum once a frame arrives.
    """

    def __init__(
        self,
        camera: CameraConfig,
        *,
        drop: bool = True,
        clock: Clock = time.monotonic,
        wallclock: Clock = time.time,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        max_changes: int = 64,
        opener: Callable[..., Any] | None = None,
        wake: threading.Event | None = None,
        keep: Callable[[float], bool] | None = None,
    ) -> None:
        if not 0 < backoff_min_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_min_s <= backoff_max_s")
        self.camera = camera
        self.source = camera_source(camera)
        self.kind = source_kind(self.source)
        self.drop = drop
        self._clock = clock
        self._wallclock = wallclock
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self._opener = opener or functools.partial(open_capture, decode_threads=camera.decode_threads)
        self._keep = keep
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._slot_t = 0.0  # monotonic time the slot's frame arrived
        self._wake = wake if wake is not None else threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changes: collections.deque[StreamChange] = collections.deque(maxlen=max_changes)
        self._state: StreamState = "starting"
        self._lost_at: float | None = None
        self._fps_ema = 0.0
        self._last_frame_t: float | None = None
        self.frames_read = 0
        self.dropped_frames = 0
        self.reconnects = 0
        self.errors = 0
        self.delays: list[float] = []  # the last backoff delays, for tests and logs (bounded)

    # -- consumer side -------------------------------------------------------------------------------
    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def fps(self) -> float:
        return self._fps_ema

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.camera.id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it up to `timeout`; an open or read blocked in FFmpeg
        ends at its own timeout, and the thread is a daemon, so it never holds the process up."""
        self.request_stop()
        self.join(timeout)

    def request_stop(self) -> None:
        """Ask the thread to end, without waiting (a node stops all its readers, then joins them)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(max(timeout, 0.0))
            return not self._thread.is_alive()
        return True

    def take(self) -> tuple[Frame, float] | None:
        """The newest unread frame with the monotonic time it arrived, without waiting; None if none."""
        with self._cond:
            if self._slot is None:
                return None
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame, self._slot_t

    def latest(self, timeout: float = 0.0) -> Frame | None:
        """Take the newest unread frame, waiting up to `timeout` seconds; None if none came (or the
        file ended)."""
        with self._cond:
            if self._slot is None and timeout > 0:
                self._cond.wait_for(
                    lambda: self._slot is not None or self._stop.is_set() or self._state == "ended", timeout
                )
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    def status_changes(self) -> list[StreamChange]:
        """Stream state changes since the last call (at most `max_changes`, oldest dropped)."""
        with self._cond:
            out = list(self._changes)
            self._changes.clear()
            return out

    def stats(self) -> ReaderStats:
        return ReaderStats(
            self._state,
            self.frames_read,
            self.dropped_frames,
            self.reconnects,
            self.errors,
            round(self._fps_ema, 2),
        )

    # -- reader thread -------------------------------------------------------------------------------
    def _set_state(self, state: StreamState, reason: str = "") -> None:
        with self._cond:
            previous = self._state
            if state == previous:
                return
            now = self._clock()
            down_s = None
            if state == "lost":
                self._lost_at = now
            elif state == "ok" and self._lost_at is not None:
                down_s = round(now - self._lost_at, 3)
                self._lost_at = None
            self._state = state
            change = StreamChange(self.camera.id, previous, state, now, self._wallclock(), reason, down_s)
            self._changes.append(change)
            self._cond.notify_all()
        self._wake.set()
        if state == "lost":
            log.warning("camera %s: stream lost (%s)", self.camera.id, reason or "no frames")
        elif state == "ok" and previous == "lost":
            log.info("camera %s: stream restored after %.1f s", self.camera.id, down_s or 0.0)

    def _arrived(self) -> float:
        """Count a frame grabbed from the source (kept or not); its arrival time."""
        now = self._clock()
        if self._last_frame_t is not None:
            dt = now - self._last_frame_t
            if dt > 0:
                inst = 1.0 / dt
                self._fps_ema = inst if self._fps_ema == 0 else 0.9 * self._fps_ema + 0.1 * inst
        self._last_frame_t = now
        return now

    def _keeps(self, t: float) -> bool:
        """Whether the frame grabbed at `t` is handed over; one that is not is only counted."""
        if self._keep is None or self._keep(t):
            return True
        self._arrived()
        self.frames_read += 1
        return False

    def _put(self, frame: Frame) -> None:
        now = self._arrived()
        with self._cond:
            if not self.drop:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
            if self._slot is not None:
                self.dropped_frames += 1
            self._slot = frame
            self._slot_t = now
            self.frames_read += 1
            self._cond.notify_all()
        self._wake.set()
        if self._state != "ok":
            self._set_state("ok")

    def _read_file(self) -> bool:
        """Deliver the file; True when it ended normally (no loop)."""
        frames = iter_file_frames(
            self.camera, clock=self._clock, wallclock=self._wallclock, stop=self._stop, keep=self._keeps
        )
        for frame in frames:
            self._put(frame)
        return not self._stop.is_set()

    def _read_stream(self) -> None:
        """Read a live stream until it fails; raise SourceError with the reason."""
        cap = self._opener(self.source, self.camera.rtsp_transport, self.open_timeout_s, self.read_timeout_s)
        try:
            if not cap.isOpened():
                raise SourceError(f"cannot open {self.kind} source")
            seq = self.frames_read
            masker = FrameMasker(self.camera)
            while not self._stop.is_set():
                if not cap.grab():
                    raise SourceError("read failed or timed out")
                t = self._clock()
                if not self._keeps(t):
                    seq += 1
                    continue
                ok, image = cap.retrieve()
                if not ok or image is None:
                    raise SourceError("read failed or timed out")
                self._put(
                    Frame(self.camera.id, seq, t, self._wallclock(), masker(np.asarray(image, np.uint8)))
                )
                seq += 1
        finally:
            cap.release()

    def _run(self) -> None:
        delay = self.backoff_min_s
        attempts = 0
        while not self._stop.is_set():
            if attempts:
                self.reconnects += 1
            attempts += 1
            frames_before = self.frames_read
            try:
                if self.kind == "file":
                    if self._read_file():
                        self._set_state("ended", "end of file")
                        return
                else:
                    self._read_stream()
            except SourceError as exc:
                if not self._stop.is_set():
                    self._set_state("lost", str(exc))
            except Exception as exc:  # a dead camera never takes the node down
                self.errors += 1
                log.exception("camera %s: reader error", self.camera.id)
                self._set_state("lost", f"error: {exc}")
            if self._stop.is_set():
                return
            if self.frames_read > frames_before:
                delay = self.backoff_min_s  # it worked for a while: retry quickly
            self.delays = [*self.delays[-31:], delay]
            log.info("camera %s: reconnecting to %s in %.1f s", self.camera.id, self.kind, delay)
            self._stop.wait(delay)
            delay = min(delay * 2.0, self.backoff_max_s)
