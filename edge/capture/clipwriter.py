"""Cutting event clips from the camera rings once each event's `post_s` has passed.

`ClipWorker` holds the clip requests of all cameras and writes each when the video after the event
exists, on its own thread: it never blocks the detection loop. Several alerts of one frame (two people
entering a zone together) ask for the same seconds of video: that clip is cut once and linked.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from edge.capture.clipmask import mask_clip
from edge.capture.clips import Clip, ClipError, ClipStore, Segment, describe_clip, write_clip
from edge.capture.recorder import NO_CLIP_STATES, ClipRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClipRequest:
    event_id: str
    camera_id: str
    ts: float
    pre_s: float
    post_s: float


class ClipWorker:
    """Writes each requested clip into the store once the recorder holds video up to `ts + post_s`."""

    def __init__(
        self,
        recorders: dict[str, ClipRecorder],
        store: ClipStore,
        clock: Callable[[], float] = time.time,
        give_up_s: float = 30.0,
    ) -> None:
        self.recorders = recorders
        self.store = store
        self._clock = clock
        self.give_up_s = give_up_s
        self._pending: list[ClipRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0
        self.failures: dict[str, str] = {}  # event id -> why its clip could not be made (bounded)
        self.linked = 0  # clips that were another event's clip of the same seconds
        self._recent: dict[tuple[str, float, float], Clip] = {}  # (camera, t0, t1) -> the last few clips

    def request(self, req: ClipRequest) -> None:
        with self._lock:
            self._pending.append(req)

    def is_pending(self, event_id: str) -> bool:
        with self._lock:
            return any(r.event_id == event_id for r in self._pending)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clip-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.step()

    def step(self) -> list[Clip]:
        """Write every clip that is due; drop requests that can no longer be served."""
        now = self._clock()
        with self._lock:  # a due request stays listed while it is written: `is_pending` must not miss it
            due = [r for r in self._pending if now >= r.ts + r.post_s]
        written, done = [], []
        for req in due:
            try:
                clip = self._write(req, now)
            except ClipError as exc:
                self._fail(req, str(exc))
                done.append(req)
                continue
            if clip is not None:
                written.append(clip)
                done.append(req)
        with self._lock:
            self._pending = [r for r in self._pending if r not in done]
        if written:
            self.store.prune(now)
        return written

    def _write(self, req: ClipRequest, now: float) -> Clip | None:
        rec = self.recorders.get(req.camera_id)
        if rec is None or rec.state in NO_CLIP_STATES:
            raise ClipError(rec.message if rec is not None else "clips are off for this camera")
        rec.ring.poll()
        t0, t1 = req.ts - req.pre_s, req.ts + req.post_s
        final = self.store.path_for(req.event_id)
        same = self._recent.get((req.camera_id, t0, t1))
        if same is not None and same.path.is_file():
            clip = self._link(same, final)
        else:
            with rec.ring.pinned():  # the recorder's pruning must not delete a segment being copied
                segs = rec.ring.covering(t0, t1, latest_start=req.ts)
                if not segs or segs[-1].end < t1:
                    if now > t1 + self.give_up_s:
                        raise ClipError("the recorder has no video up to the end of the clip (stream down?)")
                    return None  # the segment holding t1 is still being written
                clip = self._cut(rec, segs, t0, t1, req.event_id)
            self._recent = {**dict(list(self._recent.items())[-7:]), (req.camera_id, t0, t1): clip}
        self.written += 1
        log.info(
            "camera %s: clip %s (%.1f s, %d bytes)",
            req.camera_id,
            clip.path.name,
            clip.duration_s,
            clip.bytes,
        )
        return clip

    def _cut(self, rec: ClipRecorder, segs: list[Segment], t0: float, t1: float, event_id: str) -> Clip:
        final = self.store.path_for(event_id)
        mask = rec.settings.mask
        checked = rec.state == "recording"  # the recorder probed the codec of its first segment
        if mask is None:  # the file's mtime is its first frame's (lookup)
            return write_clip(segs, t0, t1, final, check_codec=not checked)
        raw = write_clip(segs, t0, t1, self.store.work_path(event_id), check_codec=not checked)  # no masks:
        try:
            mask_clip(raw.path, final, mask)  # paint them in a re-encoded copy
        finally:
            raw.path.unlink(missing_ok=True)
        return describe_clip(final, raw.start)

    def _link(self, same: Clip, final: Path) -> Clip:
        """Another event's clip of the same seconds: one more name for the same file (a copy where the
        file system has no hard links)."""
        final.unlink(missing_ok=True)
        try:
            os.link(same.path, final)
        except OSError:
            shutil.copy2(same.path, final)
        self.linked += 1
        return replace(same, path=final)

    def _fail(self, req: ClipRequest, why: str) -> None:
        self.failed += 1
        if len(self.failures) < 256:
            self.failures[req.event_id] = why
        log.warning("camera %s: no clip for event %s: %s", req.camera_id, req.event_id, why)
