"""Where events go once a rule emits them: the sinks, and the snapshot worker that feeds them in order.

The snapshot worker encodes event JPEGs on its own thread so JPEG encoding never blocks detection; the
pipeline (edge.pipeline) owns and starts it. A failing snapshot or sink costs that one delivery, never the
event stream.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path
from typing import Protocol

from edge.camera_config import CameraConfig
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
