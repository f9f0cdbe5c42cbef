"""A clip upload over a real Mosquitto whose uplink is cut half-way: the node's upload stops, the station
keeps its partial file and serves nothing; the operator's repeated request completes the clip, and the
chunks that had arrived are not sent into the file twice."""

from __future__ import annotations

import hashlib
import queue
import random
import threading
import time
from pathlib import Path

import pytest
from conftest import make_broker
from support import wait_for
from test_central_support import make_event

from central.clipfetch import ClipAssembler, ClipFiles, ClipReceiver
from central.config import StationMqttSettings
from central.ingest import IngestCounters, Item, MqttIngest, event_row
from central.store import Store
from contract.clips import CHUNK_BYTES
from edge.capture.clips import ClipLookup
from edge.config import NodeMqttSettings
from edge.transport.clipupload import ClipUploader, UploadRequest
from edge.transport.outbox import Outbox
from edge.transport.publisher import Publisher

pytestmark = [pytest.mark.integration]
PREFIX = "roadwatch/v1"


def test_a_cut_uplink_leaves_nothing_half_stored_and_a_repeat_completes(tmp_path: Path) -> None:
    broker = make_broker(tmp_path)
    broker.start()
    store = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    event = make_event(1, node="n1", camera="gate")
    store.insert_events([event_row(event, time.time(), time.time())])
    store.clip_requested(event["event_id"], "n1", time.time())
    files = ClipFiles(tmp_path / "clips")
    asm = ClipAssembler(files, store, quota_bytes=64 * 1024 * 1024)
    receiver = ClipReceiver(asm, PREFIX)
    receiver.start()
    station = StationMqttSettings(port=broker.port, client_id="station", reconnect_max_s=2)
    ingest = MqttIngest(station, queue.Queue[Item](), IngestCounters(), None, receiver.offer)
    ingest.start()
    publisher = Publisher(
        "n1",
        NodeMqttSettings(port=broker.port, reconnect_min_s=1, reconnect_max_s=2, keepalive_s=5),
        Outbox(tmp_path / "o.sqlite"),
    )
    publisher.start()
    data = random.Random(3).randbytes(40 * CHUNK_BYTES + 77)
    (tmp_path / "clip.mp4").write_bytes(data)
    found = ClipLookup("ready", tmp_path / "clip.mp4", duration_s=15.0, start_ts=1.0)

    def slow_uplink(topic: str, payload: bytes) -> bool:
        time.sleep(0.03)  # about 4 MB/s: a cut lands in the middle
        return publisher.publish_wait(topic, payload, timeout_s=3)

    uploader = ClipUploader(PREFIX, "n1", lambda _c, _e: found, slow_uplink)
    try:
        assert ingest.connected.wait(5) and wait_for(lambda: publisher.connected, 5)
        first = threading.Thread(target=uploader.step, args=(UploadRequest("gate", event["event_id"], 0.0),))
        first.start()
        assert wait_for(lambda: asm.counts["chunk"] >= 10, 10)
        broker.stop()  # the uplink drops mid-transfer
        first.join(15)
        assert uploader.failed == 1 and uploader.sent == 0
        got = asm.counts["chunk"]
        assert 10 <= got < 41
        assert not list(files.root.glob("*/*.mp4"))  # nothing half-stored
        row = store.clip(event["event_id"])
        assert row is not None and row.state == "receiving" and row.sha256 is None
        broker.start()
        assert wait_for(lambda: ingest.connected.is_set() and publisher.connected, 15)
        # The operator asks again; the node sends the same meta and every chunk once more.
        uploader.step(UploadRequest("gate", event["event_id"], 0.0))
        assert wait_for(lambda: asm.counts["stored"] == 1, 15), asm.counts
    finally:
        publisher.stop(2)
        ingest.stop()
        receiver.stop()
        broker.stop()
    row = store.clip(event["event_id"])
    assert row is not None and row.state == "ready" and row.bytes == len(data)
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert files.path_for(row.sha256).read_bytes() == data
    assert asm.counts["duplicate"] >= got - 1 and asm.counts["bad_sha"] == 0
    store.close()


def test_a_station_restart_mid_upload_leaves_nothing_half_stored_and_a_repeat_completes(
    tmp_path: Path,
) -> None:
    """The aggregator process stops half-way through an upload and starts again on the same database
    and broker session: the chunks the broker kept for it find no meta (counted, dropped), the clip says
    `rejected` with the reason instead of a `receiving` nothing will finish, and the operator's repeat
    stores the whole clip once."""
    broker = make_broker(tmp_path)
    broker.start()
    db, clip_dir = tmp_path / "c.sqlite", tmp_path / "clips"
    event = make_event(1, node="n1", camera="gate")
    station = StationMqttSettings(port=broker.port, client_id="station", reconnect_max_s=2)

    def aggregator() -> tuple[Store, ClipAssembler, ClipReceiver, MqttIngest]:
        store = Store(db, tmp_path / "snaps")
        asm = ClipAssembler(ClipFiles(clip_dir), store, quota_bytes=64 * 1024 * 1024)
        receiver = ClipReceiver(asm, PREFIX)
        receiver.start()
        ingest = MqttIngest(station, queue.Queue[Item](), IngestCounters(), None, receiver.offer)
        ingest.start()
        assert ingest.connected.wait(5)
        return store, asm, receiver, ingest

    store, asm, receiver, ingest = aggregator()
    store.insert_events([event_row(event, time.time(), time.time())])
    store.clip_requested(event["event_id"], "n1", time.time())
    publisher = Publisher(
        "n1", NodeMqttSettings(port=broker.port, keepalive_s=5), Outbox(tmp_path / "o.sqlite")
    )
    publisher.start()
    data = random.Random(5).randbytes(40 * CHUNK_BYTES + 11)
    (tmp_path / "clip.mp4").write_bytes(data)
    found = ClipLookup("ready", tmp_path / "clip.mp4", duration_s=15.0, start_ts=1.0)

    def slow_uplink(topic: str, payload: bytes) -> bool:
        time.sleep(0.03)
        return publisher.publish_wait(topic, payload, timeout_s=3)

    uploader = ClipUploader(PREFIX, "n1", lambda _c, _e: found, slow_uplink)
    try:
        assert wait_for(lambda: publisher.connected, 5)
        first = threading.Thread(target=uploader.step, args=(UploadRequest("gate", event["event_id"], 0.0),))
        first.start()
        assert wait_for(lambda: asm.counts["chunk"] >= 10, 10)
        ingest.stop()  # the aggregator stops; the node goes on sending into the broker's session
        receiver.stop()
        store.close()
        first.join(15)
        assert uploader.sent == 1  # the broker took every chunk
        assert list((clip_dir / "partial").glob("*.part"))  # what had arrived, never served
        store, asm, receiver, ingest = aggregator()
        assert asm.counts["interrupted"] == 1 and not list((clip_dir / "partial").glob("*.part"))
        row = store.clip(event["event_id"])
        assert row is not None and row.state == "rejected" and "restarted" in row.reason
        assert wait_for(lambda: asm.counts["no_meta"] >= 1, 10), asm.counts  # the session's backlog
        assert not list(clip_dir.glob("*/*.mp4"))
        store.clip_requested(event["event_id"], "n1", time.time())  # the operator asks again
        uploader.step(UploadRequest("gate", event["event_id"], 0.0))
        assert wait_for(lambda: asm.counts["stored"] == 1, 15), asm.counts
    finally:
        publisher.stop(2)
        ingest.stop()
        receiver.stop()
        broker.stop()
    row = store.clip(event["event_id"])
    assert row is not None and row.state == "ready" and row.sha256 == hashlib.sha256(data).hexdigest()
    assert ClipFiles(clip_dir).path_for(row.sha256).read_bytes() == data
    assert asm.counts["bad_sha"] == 0
    store.close()
