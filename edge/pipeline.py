"""The edge node: wires readers, the shared detector, per-camera analyzers, snapshots and the outbox.

Threads (one process, as suits a Raspberry Pi): one capture thread per live camera decodes into a
one-frame slot and sets a shared wake event; `model.workers` inference threads (the first is the caller's)
sleep on that event, move new frames into the scheduler (edge.scheduler: one pending frame per camera,
oldest first, bounded age, policy drops counted) and analyse one camera at a time each on the shared
session; a snapshot worker (edge.sinks) encodes JPEGs and hands events to the sinks in order, so JPEG encoding
never blocks detection; the publisher (edge.transport.publisher) drains the outbox. Only this module owns threads.

Video files that are neither looped nor paced in real time are read synchronously, every frame, so
`--max-frames`, the benchmark and the counting evaluation are deterministic.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from contract.commands import Command
from edge.analyzer import CameraAnalyzer, DetectorLike, FrameResult
from edge.camera_config import CameraConfig
from edge.capture.eventclips import EventClips
from edge.config import NodeConfig
from edge.events import EventFactory
from edge.records import Event, Frame
from edge.scheduler import FrameScheduler, due, slot_filter
from edge.sinks import EventSink, SnapshotWorker
from edge.transport.clipupload import ClipUploader

log = logging.getLogger(__name__)


_STOP_BOUND_S = 1.0  # at stop, wait at most this long for workers and readers together (SIGTERM < 5 s)
_IDLE_WAIT_S = 0.5  # an idle worker wakes at least this often (watchdog, stop, stream changes)


@dataclass
class _LiveState:
    """What the inference workers of a live run share, guarded by `lock`."""

    readers: dict[str, Any]
    scheduler: FrameScheduler
    cameras: dict[str, CameraConfig]
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[str, int] = field(default_factory=dict)
    commands: dict[str, list[Command]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys(self.readers, 0)


@dataclass
class CameraStats:
    frames: int = 0
    started: float = field(default_factory=time.monotonic)
    last_log: float = field(default_factory=time.monotonic)
    frames_at_log: int = 0
    fps: float = 0.0
    stream_state: str = "starting"


def _is_sync_file(camera: CameraConfig) -> bool:
    src = camera.substream or camera.source
    return (
        "://" not in src
        and not src.startswith(("usb:", "/dev/video"))
        and not camera.loop
        and not camera.realtime
    )


class Node:
    """One edge node: its cameras, the shared detector, and the event sinks."""

    def __init__(
        self,
        config: NodeConfig,
        detector: DetectorLike,
        sinks: list[EventSink],
        max_frames: int | None = None,
        watchdog: Callable[[], object] | None = None,
        commands: queue.SimpleQueue[Command] | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.max_frames = max_frames
        self.snapshots = SnapshotWorker(sinks)
        self.clips = EventClips.build(config)
        self.clip_uploader: ClipUploader | None = None  # set by the caller that owns the MQTT link
        self.analyzers = {
            cam.id: CameraAnalyzer(
                cam, detector, EventFactory(config.node_id, cam.id, config.timezone), config.timezone
            )
            for cam in config.cameras
        }
        self.stats = {cam.id: CameraStats() for cam in config.cameras}
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by readers on each frame: idle workers sleep on it
        self.scheduler: FrameScheduler | None = None
        # seconds from a frame's arrival to the end of its analysis, the last few hundred per camera
        self.ages: dict[str, collections.deque[float]] = {
            cam.id: collections.deque(maxlen=512) for cam in config.cameras
        }
        self._watchdog: Callable[[], object] = watchdog or (lambda: None)
        # station commands (contract/commands.py), put by the MQTT thread and applied here between frames:
        # analyzers are owned by the detection loop and are not thread-safe
        self.commands: queue.SimpleQueue[Command] = commands if commands is not None else queue.SimpleQueue()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def camera_stats(self) -> dict[str, dict[str, Any]]:
        """Per-camera figures for the stats topic and the log line."""
        out: dict[str, dict[str, Any]] = {}
        for cam_id, an in self.analyzers.items():
            st = self.stats[cam_id]
            out[cam_id] = {
                "fps": round(st.fps, 2),
                "inference_ms": round(an.times.last_detect_ms, 1),
                "dropped_frames": self._dropped(cam_id),
                "stream_state": st.stream_state,
                "tracks": len(an.tracks),
            }
        return out

    def _dropped(self, cam_id: str) -> int:
        """Frames dropped by the scheduler's policy (replaced while waiting, or too old)."""
        return self.scheduler.stats[cam_id].dropped if self.scheduler is not None else 0

    def _handle(self, cam: CameraConfig, frame: Frame) -> FrameResult:
        result = self.analyzers[cam.id].process(frame)
        for ev in result.events:
            self.snapshots.submit(ev, frame, cam)
            if self.clips is not None:
                self.clips.on_event(ev)
        st = self.stats[cam.id]
        st.frames += 1
        now = time.monotonic()
        if now - st.last_log >= self.config.stats_log_interval_s:
            st.fps = (st.frames - st.frames_at_log) / (now - st.last_log)
            an = self.analyzers[cam.id]
            log.info(
                "camera %s: %.1f fps, inference %.1f ms, detector runs %d/%d, dropped %d, tracks %d, events %d",
                cam.id,
                st.fps,
                an.times.last_detect_ms,
                an.times.detector_runs,
                an.times.frames,
                self._dropped(cam.id),
                len(an.tracks),
                an.times.events,
            )
            st.last_log, st.frames_at_log = now, st.frames
        self._watchdog()
        return result

    def _apply_commands(self) -> None:
        while not self.commands.empty():  # one consumer (this loop): empty() then get() cannot block
            self._apply(self.commands.get())

    def _apply(self, command: Command) -> None:
        """Apply a station command to its camera; called by the thread analysing that camera."""
        if command.command == "upload_clip":
            self._upload_clip(command)
            return
        an = self.analyzers.get(command.camera)
        if an is None or an.health is None:
            log.warning("camera %s: %s ignored: no health checks", command.camera, command.command)
            return
        an.health.take_reference()
        log.info(
            "camera %s: new health reference requested by %s (command %s)",
            command.camera,
            command.by or "?",
            command.command_id,
        )

    def _upload_clip(self, command: Command) -> None:
        if self.clip_uploader is None:
            log.warning("camera %s: upload_clip ignored: this node sends no clips", command.camera)
            return
        self.clip_uploader.request(command.camera, command.event_id)

    def _emit(self, cam: CameraConfig, event: Event) -> None:
        self.snapshots.submit(event, None, cam)

    def run(self) -> None:
        """Run until stopped, until every file camera ends, or until `max_frames` per camera."""
        self.snapshots.start()
        if self.clips is not None:
            self.clips.start()
        try:
            sync = [c for c in self.config.cameras if _is_sync_file(c)]
            live = [c for c in self.config.cameras if not _is_sync_file(c)]
            if sync and not live:
                self._run_files(sync)
            else:
                self._run_live(self.config.cameras)
        finally:
            if self.clips is not None:
                self.clips.stop()
            self.snapshots.close()

    def _run_files(self, cams: list[CameraConfig]) -> None:
        from edge.capture.files import iter_file_frames

        iters: dict[str, Iterator[Frame]] = {c.id: iter_file_frames(c) for c in cams}
        counts = dict.fromkeys(iters, 0)
        last_t: dict[str, float] = {}
        by_id = {c.id: c for c in cams}
        for cam_id in iters:
            self.stats[cam_id].stream_state = "ok"
        while iters and not self._stop.is_set():
            self._apply_commands()
            for cam_id in list(iters):
                frame = next(iters[cam_id], None)
                if frame is None:
                    del iters[cam_id]
                    continue
                counts[cam_id] += 1
                if due(frame.t, 1.0 / by_id[cam_id].detect_fps, last_t, cam_id):
                    self._handle(by_id[cam_id], frame)
                if self.max_frames is not None and counts[cam_id] >= self.max_frames:
                    del iters[cam_id]

    def _run_live(self, cams: list[CameraConfig]) -> None:
        from edge.capture.sources import CameraReader

        # Readers hand over only the frames that open a detection slot: the others are grabbed (the
        # stream needs decoding) but never converted to BGR, copied or woken for (docs/benchmarks.md).
        readers = {c.id: CameraReader(c, wake=self._wake, keep=slot_filter(c.detect_fps)) for c in cams}
        live = _LiveState(
            readers,
            FrameScheduler({c.id: c.detect_fps for c in cams}, self.config.model.max_frame_age_periods),
            {c.id: c for c in cams},
        )
        self.scheduler = live.scheduler
        for r in readers.values():
            r.start()
        workers = [
            threading.Thread(target=self._work, args=(live,), name=f"inference-{i}", daemon=True)
            for i in range(1, self.config.model.workers)
        ]
        for w in workers:
            w.start()
        try:
            self._work(live)
        finally:
            self._stop.set()
            self._wake.set()
            deadline = time.monotonic() + _STOP_BOUND_S
            for w in workers:
                w.join(max(deadline - time.monotonic(), 0.0))
            for r in readers.values():
                r.request_stop()
            # A reader blocked in an open or read ends at its FFmpeg timeout; it is a daemon thread,
            # so the node waits a bounded time and never longer (SIGTERM is honoured within seconds).
            for r in readers.values():
                r.join(deadline - time.monotonic())

    def _work(self, live: _LiveState) -> None:
        """One inference worker: take the oldest due frame of a free camera, analyse it, repeat."""
        while not self._stop.is_set():
            with live.lock:
                self._wake.clear()  # cleared before looking: a frame arriving from now on sets it again
                self._collect(live)
                item = live.scheduler.take(time.monotonic())
                finished = not live.counts and live.scheduler.idle
            if finished:
                self._stop.set()
                self._wake.set()
                return
            if item is None:
                self._watchdog()
                self._wake.wait(_IDLE_WAIT_S)
                continue
            cam = live.cameras[item.camera]
            try:
                for command in live.commands.pop(cam.id, []):
                    self._apply(command)
                self._handle(cam, item.frame)
                self.ages[cam.id].append(time.monotonic() - item.arrived)
            except Exception:  # one camera's bad frame must not stop the others
                log.exception("camera %s: analysis failed", cam.id)
            finally:
                with live.lock:
                    live.scheduler.release(cam.id)
                self._wake.set()  # another worker may be waiting for this camera's next frame

    def _collect(self, live: _LiveState) -> None:
        """Under the lock: move new frames from the readers into the scheduler, note stream changes."""
        while not self.commands.empty():  # one consumer at a time (the lock): empty() then get()
            command = self.commands.get()
            live.commands.setdefault(command.camera, []).append(command)
        for cam_id, reader in live.readers.items():
            if cam_id not in live.counts:
                continue
            if not live.scheduler.busy(cam_id):  # the analyzer's health belongs to its worker now
                self._reader_events(live.cameras[cam_id], reader)
            got = reader.take()
            if got is None:
                if reader.state == "ended":
                    del live.counts[cam_id]
                continue
            # frames read, kept or not (`seq` counts the ones the reader only grabbed)
            live.counts[cam_id] = max(live.counts[cam_id] + 1, got[0].seq + 1)
            live.scheduler.offer(*got)
            if self.max_frames is not None and live.counts[cam_id] >= self.max_frames:
                del live.counts[cam_id]

    def _reader_events(self, cam: CameraConfig, reader: Any) -> None:
        """Turn stream state changes of a reader into stream_lost / stream_restored events."""
        an = self.analyzers[cam.id]
        state = str(reader.state)
        if state == "ok" and an.health is not None and an.health.frozen:
            state = "frozen"  # frames arrive but the picture does not change
        self.stats[cam.id].stream_state = state
        for change in reader.status_changes():
            for ev in an.health.stream_events(change) if an.health is not None else []:
                self._emit(cam, ev)
