"""Answering the station's `upload_clip`: meta, then the clip in QoS 1 chunks (contract/clips.py).

Runs on its own thread so neither the detection loop nor the MQTT network thread ever reads a clip file or
waits for a PUBACK. A clip that is not written yet (the event is younger than its `post_s`) is answered
`pending` and sent when it appears; a clip that will never exist is answered `missing` or `unsupported`
with the reason. An upload cut by a lost uplink is abandoned: the station keeps what arrived and a repeated
request sends it all again (chunks are idempotent, keyed by index).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contract.clips import CHUNK_BYTES, ClipMeta, ClipState, split_clip, topic_clip_chunk, topic_clip_meta
from edge.capture.clips import ClipLookup

log = logging.getLogger(__name__)

# publish(topic, payload) -> True once the broker acknowledged it (QoS 1) within the publisher's timeout
PublishWait = Callable[[str, bytes], bool]


@dataclass(frozen=True, slots=True)
class UploadRequest:
    camera: str
    event_id: str
    since: float


class ClipUploader:
    """One upload at a time (a rural uplink carries no more), pending requests retried every `poll_s`."""

    def __init__(
        self,
        prefix: str,
        node: str,
        lookup: Callable[[str, str], ClipLookup],
        publish: PublishWait,
        *,
        pending_max_s: float = 120.0,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prefix, self.node = prefix, node
        self._lookup, self._publish, self._clock = lookup, publish, clock
        self.pending_max_s, self.poll_s = pending_max_s, poll_s
        self._queue: queue.SimpleQueue[UploadRequest | None] = queue.SimpleQueue()
        self._waiting: list[UploadRequest] = []
        self._thread: threading.Thread | None = None
        self.sent = self.failed = 0

    def counters(self) -> dict[str, float]:
        """Cumulative figures for the node's metrics endpoint (edge.metrics)."""
        return {"clip_uploads_total": self.sent, "clip_upload_failures_total": self.failed}

    def request(self, camera: str, event_id: str) -> None:
        """Called from any thread (the pipeline's command handling)."""
        self._queue.put(UploadRequest(camera, event_id, self._clock()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clip-upload", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            try:
                req = self._queue.get(timeout=self.poll_s)
            except queue.Empty:
                req = None
            else:
                if req is None:
                    return
            if req is not None:
                self.step(req)
            waiting, self._waiting = self._waiting, []
            for old in waiting:
                self.step(old, announce_pending=False)

    def step(self, req: UploadRequest, announce_pending: bool = True) -> ClipState:
        """Answer one request once; a pending clip is kept for the next round (until `pending_max_s`)."""
        found = self._lookup(req.camera, req.event_id)
        if found.state == "pending":
            if self._clock() - req.since > self.pending_max_s:
                found = ClipLookup("missing", reason="the clip was not written in time")
            else:
                self._waiting.append(req)
                if announce_pending:
                    self._meta(
                        req, ClipMeta(v=1, event_id=req.event_id, state="pending", reason=found.reason)
                    )
                return "pending"
        if found.state != "ready" or found.path is None:
            self._meta(req, ClipMeta(v=1, event_id=req.event_id, state=found.state, reason=found.reason))
            return found.state
        return self._upload(req, found, found.path)

    def _upload(self, req: UploadRequest, found: ClipLookup, path: Path) -> ClipState:
        try:
            data = path.read_bytes()
        except OSError as exc:  # pruned between lookup and read, or a disk error
            self._meta(req, ClipMeta(v=1, event_id=req.event_id, state="missing", reason=str(exc)[:300]))
            return "missing"
        sha, chunks = split_clip(data, CHUNK_BYTES)
        try:
            meta = ClipMeta(
                v=1,
                event_id=req.event_id,
                state="ready",
                sha256=sha,
                bytes=len(data),
                chunks=len(chunks),
                chunk_bytes=CHUNK_BYTES,
                duration_s=round(max(0.0, found.duration_s), 3),
                start_ts=max(0.0, found.start_ts),
            )
        except ValueError as exc:  # a clip over the contract's size limit
            self._meta(req, ClipMeta(v=1, event_id=req.event_id, state="unsupported", reason=str(exc)[:300]))
            return "unsupported"
        ok = self._meta(req, meta)
        for n, chunk in enumerate(chunks):
            if not ok:
                break
            ok = self._publish(topic_clip_chunk(self.prefix, self.node, req.camera, req.event_id, n), chunk)
        if ok:
            self.sent += 1
            log.info(
                "camera %s: clip %s sent (%d bytes, %d chunks)",
                req.camera,
                req.event_id,
                len(data),
                len(chunks),
            )
        else:
            self.failed += 1
            log.warning(
                "camera %s: clip %s upload cut (uplink down?); the station may ask again",
                req.camera,
                req.event_id,
            )
        return "ready"

    def _meta(self, req: UploadRequest, meta: ClipMeta) -> bool:
        topic = topic_clip_meta(self.prefix, self.node, req.camera, req.event_id)
        return self._publish(topic, meta.model_dump_json().encode("utf-8"))
