"""The edge node: wires readers, the shared detector, per-camera analyzers, snapshots and the outbox.

Threads (one process, as suits a Raspberry Pi): one capture thread per live camera writes into a
one-frame slot; this module's inference loop owns the model session and runs each camera when it is due
(`detect_fps`); a snapshot worker encodes JPEGs and hands events to the sinks in order, so JPEG encoding
never blocks detection; the publisher (edge.transport.publisher) drains the outbox. Only this module owns threads.

Video files that are neither looped nor paced in real time are read synchronously, every frame, so
`--max-frames`, the benchmark and the counting evaluation are deterministic.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from contract.commands import Command
from edge.analyzer import CameraAnalyzer, DetectorLike, FrameResult
from edge.camera_config import CameraConfig
from edge.config import NodeConfig
from edge.events import EventFactory
from edge.records import Event, Frame
from edge.transport.wire import event_payload

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Receives each event once, in order, with its snapshot JPEG (or None)."""

    def put(self, event: Event, jpeg: bytes | None) -> None: ...


class JsonlSink:
    """Appends each event as one JSON line (the wire payload without the sequence number)."""

    def __init__(self, path: str | Path) -> None:
        self._file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._seq = 0

    def put(self, event: Event, jpeg: bytes | None) -> None:
        self._seq += 1
        payload = event_payload(event, self._seq, None)
        payload["snapshot_bytes"] = len(jpeg) if jpeg else 0
        self._file.write(json.dumps(payload, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


_OBJECT_KINDS_WITHOUT_SNAPSHOT = {"count_summary", "stream_lost", "stream_restored"}


class SnapshotWorker:
    """Encodes event JPEGs off the detection loop and passes (event, jpeg) to the sinks in order."""

    def __init__(self, sinks: list[EventSink], max_queue: int = 256) -> None:
        self._sinks = sinks
        self._queue: queue.Queue[tuple[Event, Frame | None, CameraConfig] | None] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self.errors = 0
        self.delivered = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, event: Event, frame: Frame | None, camera: CameraConfig) -> None:
        self._queue.put((event, frame, camera))

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        from edge.draw import event_jpeg

        while True:
            item = self._queue.get()
            if item is None:
                return
            event, frame, camera = item
            jpeg: bytes | None = None
            try:
                if (
                    frame is not None
                    and camera.snapshots.enabled
                    and event.kind not in _OBJECT_KINDS_WITHOUT_SNAPSHOT
                ):
                    jpeg = event_jpeg(
                        frame.image,
                        event.box,
                        event.texts.get("en", event.kind),
                        camera.snapshots.max_width,
                        camera.snapshots.quality,
                    )
            except Exception:  # a bad frame must not cost the event itself
                self.errors += 1
                log.exception("camera %s: snapshot for event %s failed", event.camera, event.event_id)
            for sink in self._sinks:
                try:
                    sink.put(event, jpeg)
                except Exception:
                    self.errors += 1
                    log.exception(
                        "camera %s: sink %s failed for event %s",
                        event.camera,
                        type(sink).__name__,
                        event.event_id,
                    )
            self.delivered += 1


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
        self.analyzers = {
            cam.id: CameraAnalyzer(
                cam, detector, EventFactory(config.node_id, cam.id, config.timezone), config.timezone
            )
            for cam in config.cameras
        }
        self.stats = {cam.id: CameraStats() for cam in config.cameras}
        self._stop = threading.Event()
        self._watchdog: Callable[[], object] = watchdog or (lambda: None)
        # station commands (contract/commands.py), put by the MQTT thread and applied here between frames:
        # analyzers are owned by the detection loop and are not thread-safe
        self.commands: queue.SimpleQueue[Command] = commands if commands is not None else queue.SimpleQueue()

    def stop(self) -> None:
        self._stop.set()

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
                "dropped_frames": int(an.times.extra.get("dropped_frames", 0)),
                "stream_state": st.stream_state,
                "tracks": len(an.tracks),
            }
        return out

    def _handle(self, cam: CameraConfig, frame: Frame) -> FrameResult:
        result = self.analyzers[cam.id].process(frame)
        for ev in result.events:
            self.snapshots.submit(ev, frame, cam)
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
                int(an.times.extra.get("dropped_frames", 0)),
                len(an.tracks),
                an.times.events,
            )
            st.last_log, st.frames_at_log = now, st.frames
        self._watchdog()
        return result

    def _apply_commands(self) -> None:
        while not self.commands.empty():  # one consumer (this loop): empty() then get() cannot block
            command = self.commands.get()
            an = self.analyzers.get(command.camera)
            if an is None or an.health is None:
                log.warning("camera %s: %s ignored: no health checks", command.camera, command.command)
                continue
            an.health.take_reference()
            log.info(
                "camera %s: new health reference requested by %s (command %s)",
                command.camera,
                command.by or "?",
                command.command_id,
            )

    def _emit(self, cam: CameraConfig, event: Event) -> None:
        self.snapshots.submit(event, None, cam)

    def run(self) -> None:
        """Run until stopped, until every file camera ends, or until `max_frames` per camera."""
        self.snapshots.start()
        try:
            sync = [c for c in self.config.cameras if _is_sync_file(c)]
            live = [c for c in self.config.cameras if not _is_sync_file(c)]
            if sync and not live:
                self._run_files(sync)
            else:
                self._run_live(self.config.cameras)
        finally:
            self.snapshots.close()

    def _due(self, cam: CameraConfig, frame: Frame, last_t: dict[str, float]) -> bool:
        """Analyse at `detect_fps` using the frame's own clock, so file playback is deterministic."""
        period = 1.0 / cam.detect_fps
        prev = last_t.get(cam.id)
        if prev is not None and frame.t - prev < period * 0.999:
            return False
        last_t[cam.id] = frame.t if prev is None or frame.t - prev > 2 * period else prev + period
        return True

    def _run_files(self, cams: list[CameraConfig]) -> None:
        from edge.capture.sources import iter_file_frames

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
                if self._due(by_id[cam_id], frame, last_t):
                    self._handle(by_id[cam_id], frame)
                if self.max_frames is not None and counts[cam_id] >= self.max_frames:
                    del iters[cam_id]

    def _run_live(self, cams: list[CameraConfig]) -> None:
        from edge.capture.sources import CameraReader

        readers = {c.id: CameraReader(c) for c in cams}
        for r in readers.values():
            r.start()
        counts = dict.fromkeys(readers, 0)
        last_t: dict[str, float] = {}
        by_id = {c.id: c for c in cams}
        try:
            while not self._stop.is_set() and counts:
                self._apply_commands()
                idle = True
                for cam_id, reader in readers.items():
                    if cam_id not in counts:
                        continue
                    self._reader_events(by_id[cam_id], reader)
                    frame = reader.latest(timeout=0.0)
                    if frame is None:
                        if reader.state == "ended":
                            del counts[cam_id]
                        continue
                    idle = False
                    counts[cam_id] += 1
                    if self._due(by_id[cam_id], frame, last_t):
                        self._handle(by_id[cam_id], frame)
                    if self.max_frames is not None and counts[cam_id] >= self.max_frames:
                        del counts[cam_id]
                if idle:
                    self._watchdog()
                    self._stop.wait(0.005)
        finally:
            for r in readers.values():
                r.stop()

    def _reader_events(self, cam: CameraConfig, reader: Any) -> None:
        """Turn stream state changes of a reader into stream_lost / stream_restored events."""
        an = self.analyzers[cam.id]
        an.times.extra["dropped_frames"] = float(reader.dropped_frames)
        state = str(reader.state)
        if state == "ok" and an.health is not None and an.health.frozen:
            state = "frozen"  # frames arrive but the picture does not change
        self.stats[cam.id].stream_state = state
        for change in reader.status_changes():
            for ev in an.health.stream_events(change) if an.health is not None else []:
                self._emit(cam, ev)
