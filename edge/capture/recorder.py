"""Per-camera ring recorders and the worker that cuts clips for events once their `post_s` has passed.

`ClipRecorder` owns one ffmpeg process (stream copy into segments, see `edge.capture.clips`) and restarts
it with a capped backoff when the camera drops, like the frame readers do; a codec that cannot go into
an MP4 stops that recorder with one clear log line. `ClipWorker` holds the clip requests of all cameras
and writes each when the video after the event exists; it never blocks the detection loop.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.capture.clips import (
    SUPPORTED_CODECS,
    Clip,
    ClipError,
    ClipLookup,
    ClipStore,
    SegmentRing,
    probe_codec,
    probe_duration,
    recorder_command,
    write_clip,
)
from edge.capture.opening import source_kind
from edge.capture.sourceurl import expand_path, expand_source
from edge.config import NodeConfig
from edge.records import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    source: str
    live: bool
    rtsp_transport: str = "tcp"
    segment_s: float = 1.0
    keep_s: float = 60.0


class ClipRecorder:
    """Keeps the last `keep_s` seconds of one camera's encoded video as segment files in `folder`."""

    def __init__(self, camera_id: str, settings: RecorderSettings, folder: Path) -> None:
        self.camera_id = camera_id
        self.settings = settings
        self.folder = folder
        self.ring = SegmentRing(folder, settings.keep_s)
        self.state = "starting"  # starting | recording | unsupported | stopped
        self.message = ""
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # segments of an earlier run have no known times
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"clips-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        self._kill()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.state = "stopped"

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _spawn(self) -> subprocess.Popen[bytes]:
        s = self.settings
        cmd = recorder_command(
            s.source, self.folder, s.segment_s, live=s.live, rtsp_transport=s.rtsp_transport
        )
        with (self.folder / "ffmpeg.log").open("ab") as err:  # the child keeps its own descriptor
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def _last_error(self) -> str:
        try:
            return (self.folder / "ffmpeg.log").read_bytes()[-300:].decode(errors="replace").strip()
        except OSError:
            return ""

    def _check_codec(self) -> bool:
        segs = self.ring.segments()
        if not segs or self.state != "starting":
            return True
        codec = probe_codec(segs[0].path)
        if codec in SUPPORTED_CODECS:
            self.state = "recording"
            return True
        self.state = "unsupported"
        self.message = f"video codec {codec or 'unknown'!r} cannot be kept as MP4 clips; use H.264 or H.265"
        log.error("camera %s: clips off: %s", self.camera_id, self.message)
        return False

    def _source_supported(self) -> bool:
        """Probe the camera's codec before the first recording (a codec MPEG-TS cannot carry would only
        make ffmpeg fail over and over); a source that does not answer is tried by recording anyway."""
        try:
            codec = probe_codec(
                Path(self.settings.source) if "://" not in self.settings.source else self.settings.source
            )
        except (OSError, subprocess.SubprocessError):
            return True
        if not codec or codec in SUPPORTED_CODECS:
            return True
        self.state = "unsupported"
        self.message = f"video codec {codec!r} cannot be kept as MP4 clips; use H.264 or H.265"
        log.error("camera %s: clips off: %s", self.camera_id, self.message)
        return False

    def _run(self) -> None:
        delay = 1.0
        if not self._source_supported():
            return
        while not self._stop.is_set():
            self._proc = self._spawn()
            while not self._stop.is_set() and self._proc.poll() is None:
                self.ring.poll()
                if not self._check_codec():
                    self._kill()
                    return
                self._stop.wait(0.25)
            if self._stop.is_set():
                return
            self.restarts += 1
            log.warning(
                "camera %s: clip recorder stopped (%s); again in %.0f s",
                self.camera_id,
                self._last_error(),
                delay,
            )
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)


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
        if rec is None or rec.state == "unsupported":
            raise ClipError(rec.message if rec is not None else "clips are off for this camera")
        rec.ring.poll()
        t0, t1 = req.ts - req.pre_s, req.ts + req.post_s
        segs = rec.ring.covering(t0, t1)
        if not segs or segs[-1].end < t1:
            if now > t1 + self.give_up_s:
                raise ClipError("the recorder has no video up to the end of the clip (stream down?)")
            return None  # the segment holding t1 is still being written
        clip = write_clip(segs, t0, t1, self.store.path_for(req.event_id))
        os.utime(clip.path, (clip.start, clip.start))  # the file's time is its first frame's (lookup)
        self.written += 1
        log.info(
            "camera %s: clip %s (%.1f s, %d bytes)",
            req.camera_id,
            clip.path.name,
            clip.duration_s,
            clip.bytes,
        )
        return clip

    def _fail(self, req: ClipRequest, why: str) -> None:
        self.failed += 1
        if len(self.failures) < 256:
            self.failures[req.event_id] = why
        log.warning("camera %s: no clip for event %s: %s", req.camera_id, req.event_id, why)


class EventClips:
    """The node's clip machinery: one recorder per live camera with clips on, the store, the worker."""

    def __init__(
        self, recorders: dict[str, ClipRecorder], worker: ClipWorker, cameras: dict[str, Any]
    ) -> None:
        self.recorders = recorders
        self.worker = worker
        self.cameras = cameras

    @classmethod
    def build(cls, config: NodeConfig) -> EventClips | None:
        """None when no camera keeps clips. Cameras read as fast as possible from a file (evaluation runs)
        have no real time to record and get no clips."""
        root = Path(expand_path(config.clip_store.path))
        recorders: dict[str, ClipRecorder] = {}
        for cam in config.cameras:
            if not cam.clips.enabled:
                continue
            source = expand_source(cam.source)
            live = source_kind(source) != "file"
            if not live and not (cam.realtime or cam.loop):
                log.warning("camera %s: clips need a live camera or a realtime file; none kept", cam.id)
                continue
            keep_s = cam.clips.pre_s + cam.clips.post_s + 30.0
            settings = RecorderSettings(source, live, cam.rtsp_transport, cam.clips.segment_s, keep_s)
            recorders[cam.id] = ClipRecorder(cam.id, settings, root / "ring" / cam.id)
        if not recorders:
            return None
        store = ClipStore(
            root / "clips", int(config.clip_store.max_mb * 1e6), config.clip_store.max_age_h * 3600
        )
        return cls(recorders, ClipWorker(recorders, store), {c.id: c for c in config.cameras})

    def start(self) -> None:
        for rec in self.recorders.values():
            rec.start()
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        for rec in self.recorders.values():
            rec.stop()

    def on_event(self, event: Event) -> None:
        """Ask for a clip when the event is an alert of a kind this camera keeps clips for."""
        cam = self.cameras.get(event.camera)
        if cam is None or event.camera not in self.recorders or event.kind not in cam.clips.kinds:
            return
        if event.phase not in ("instant", "start"):
            return
        self.worker.request(
            ClipRequest(event.event_id, event.camera, event.ts, cam.clips.pre_s, cam.clips.post_s)
        )

    def lookup(self, camera: str, event_id: str) -> ClipLookup:
        """Where this event's clip stands, for the station's `upload_clip` (edge.transport.clipupload)."""
        path = self.worker.store.get(event_id)
        if path is not None:
            try:
                duration = probe_duration(path)
            except (OSError, subprocess.SubprocessError):
                duration = 0.0
            return ClipLookup("ready", path, duration_s=duration, start_ts=path.stat().st_mtime)
        if self.worker.is_pending(event_id):
            return ClipLookup("pending", reason="the clip is written once the event's post_s has passed")
        rec = self.recorders.get(camera)
        if rec is None:
            return ClipLookup("unsupported", reason=f"camera {camera} keeps no clips")
        if rec.state == "unsupported":
            return ClipLookup("unsupported", reason=rec.message[:300])
        why = self.worker.failures.get(event_id, "no clip kept for this event (not a clip kind, or removed)")
        return ClipLookup("missing", reason=why[:300])
