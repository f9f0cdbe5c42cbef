"""The node's answer to `upload_clip` (edge/transport/clipupload.py): what it publishes for each state."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from contract.clips import CHUNK_BYTES, ClipMeta, parse_clip_topic
from edge.capture.clips import ClipLookup, ClipStore
from edge.capture.clipwriter import ClipRequest, ClipWorker
from edge.capture.eventclips import EventClips
from edge.capture.recorder import ClipRecorder, RecorderSettings
from edge.cli import _metric_counters
from edge.metrics import render_metrics
from edge.transport.clipupload import ClipUploader, UploadRequest

P = "roadwatch/v1"
EID = "0b8e6c7a-1f2d-4e5a-9b3c-7d6e5f4a3b2c"


class Wire:
    """The broker side as the uploader sees it: acknowledges the first `up_to` messages, then drops."""

    def __init__(self, up_to: int = 10**6) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.up_to = up_to

    def publish(self, topic: str, payload: bytes) -> bool:
        if len(self.sent) >= self.up_to:
            return False
        self.sent.append((topic, payload))
        return True

    def metas(self) -> list[ClipMeta]:
        return [ClipMeta.model_validate_json(p) for t, p in self.sent if t.endswith("/meta")]


def uploader(wire: Wire, found: list[ClipLookup], now: list[float]) -> ClipUploader:
    return ClipUploader(
        P, "n1", lambda _c, _e: found[0], wire.publish, pending_max_s=60, clock=lambda: now[0]
    )


def test_a_written_clip_goes_out_as_meta_then_ordered_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * CHUNK_BYTES // 256) + b"tail"
    (tmp_path / "c.mp4").write_bytes(data)
    wire, now = Wire(), [100.0]
    up = uploader(wire, [ClipLookup("ready", tmp_path / "c.mp4", duration_s=15.2, start_ts=90.0)], now)
    assert up.step(UploadRequest("gate", EID, 100.0)) == "ready"
    (meta,) = wire.metas()
    assert (meta.state, meta.bytes, meta.chunks, meta.duration_s) == ("ready", len(data), 4, 15.2)
    topics = [parse_clip_topic(t, P) for t, _ in wire.sent]
    assert [t.index for t in topics if t is not None] == [None, 0, 1, 2, 3]
    assert b"".join(p for t, p in wire.sent[1:]) == data and up.sent == 1
    assert up.counters() == {"clip_uploads_total": 1, "clip_upload_failures_total": 0}  # node metrics


@pytest.mark.parametrize(
    ("found", "state", "reason"),
    [
        (ClipLookup("missing", reason="removed"), "missing", "removed"),
        (ClipLookup("unsupported", reason="codec mjpeg"), "unsupported", "codec mjpeg"),
        (ClipLookup("ready", Path("/nonexistent/c.mp4")), "missing", "No such file"),
    ],
)
def test_no_clip_is_answered_with_the_reason(found: ClipLookup, state: str, reason: str) -> None:
    wire = Wire()
    uploader(wire, [found], [0.0]).step(UploadRequest("gate", EID, 0.0))
    (meta,) = wire.metas()
    assert meta.state == state and reason in meta.reason and len(wire.sent) == 1


def test_pending_is_announced_once_then_sent_when_written(tmp_path: Path) -> None:
    wire, now = Wire(), [10.0]
    found = [ClipLookup("pending", reason="post_s")]
    up = uploader(wire, found, now)
    req = UploadRequest("gate", EID, 10.0)
    assert up.step(req) == "pending"
    assert up.step(req, announce_pending=False) == "pending"  # retried silently
    assert [m.state for m in wire.metas()] == ["pending"]
    (tmp_path / "c.mp4").write_bytes(b"x" * 10)
    found[0] = ClipLookup("ready", tmp_path / "c.mp4")
    assert up.step(req, announce_pending=False) == "ready"
    assert [m.state for m in wire.metas()] == ["pending", "ready"]
    now[0] = 10.0 + 61
    found[0] = ClipLookup("pending")
    assert up.step(UploadRequest("gate", EID, 10.0)) == "missing"  # waited too long


def test_a_cut_uplink_stops_the_upload_and_counts_it(tmp_path: Path) -> None:
    (tmp_path / "c.mp4").write_bytes(b"y" * (5 * CHUNK_BYTES))
    wire = Wire(up_to=3)
    up = uploader(wire, [ClipLookup("ready", tmp_path / "c.mp4")], [0.0])
    up.step(UploadRequest("gate", EID, 0.0))
    assert len(wire.sent) == 3 and up.failed == 1 and up.sent == 0
    assert json.loads(wire.sent[0][1])["chunks"] == 5


def test_lookup_after_the_node_clip_store_filled_up(tmp_path: Path) -> None:
    """A full clip store drops its oldest clip; asking for it then answers `missing`, the newer is ready."""
    rec = ClipRecorder("gate", RecorderSettings("cam.mp4", live=False), tmp_path / "ring")
    store = ClipStore(tmp_path / "clips", max_bytes=100, max_age_s=3600.0)
    clips = EventClips({"gate": rec}, ClipWorker({"gate": rec}, store), {})
    old, new = "1" * 8 + EID[8:], EID
    store.path_for(old).write_bytes(b"o" * 80)
    os.utime(store.path_for(old), (1000.0, 1000.0))
    store.path_for(new).write_bytes(b"n" * 80)
    assert store.prune() == 1
    assert clips.lookup("gate", old).state == "missing" and "removed" in clips.lookup("gate", old).reason
    ready = clips.lookup("gate", new)
    assert ready.state == "ready" and ready.path == store.path_for(new)
    clips.worker.request(ClipRequest("e3", "gate", 2e9, 5.0, 10.0))
    assert clips.lookup("gate", "e3").state == "pending"
    assert clips.lookup("other", "e4").state == "unsupported"
    assert clips.counters() == {  # the node's metrics: the eviction is counted
        "clips_written_total": 0,
        "clips_linked_total": 0,
        "clips_failed_total": 0,
        "clips_evicted_total": 1,
        "clip_recorder_restarts_total": 0,
    }
    node = SimpleNamespace(clips=clips, clip_uploader=uploader(Wire(), [], [0.0]))  # what cmd_run holds
    text = render_metrics({"node": "n1", "cameras": {}}, _metric_counters(None, node))
    assert 'roadwatch_clips_evicted_total{node="n1"} 1' in text.splitlines()
    assert 'roadwatch_clip_upload_failures_total{node="n1"} 0' in text.splitlines()
