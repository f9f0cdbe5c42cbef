"""The node's event clip machinery: one ring recorder per live camera with clips on, the clip store,
the worker that cuts clips, and the answer to the station's `upload_clip` lookup."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from edge.capture.clips import ClipLookup, ClipStore, probe_duration
from edge.capture.clipwriter import ClipRequest, ClipWorker
from edge.capture.opening import source_kind
from edge.capture.recorder import NO_CLIP_STATES, ClipRecorder, RecorderSettings
from edge.capture.sourceurl import expand_path, expand_source
from edge.config import NodeConfig
from edge.records import Event

log = logging.getLogger(__name__)


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
            mask = cam if cam.clips.mask_clips and cam.privacy_masks else None
            settings = RecorderSettings(source, live, cam.rtsp_transport, cam.clips.segment_s, keep_s, mask)
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

    def counters(self) -> dict[str, float]:
        """Cumulative figures for the node's metrics endpoint (edge.metrics)."""
        w = self.worker
        return {
            "clips_written_total": w.written,
            "clips_linked_total": w.linked,
            "clips_failed_total": w.failed,
            "clips_evicted_total": w.store.dropped,
            "clip_recorder_restarts_total": sum(r.restarts for r in self.recorders.values()),
        }

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
        if rec.state in NO_CLIP_STATES:
            return ClipLookup("unsupported", reason=rec.message[:300])
        why = self.worker.failures.get(event_id, "no clip kept for this event (not a clip kind, or removed)")
        return ClipLookup("missing", reason=why[:300])
