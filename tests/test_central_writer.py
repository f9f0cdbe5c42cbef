"""The writer thread: acknowledges only committed messages, retries failed batches, and announces an
event once, with its snapshot when the snapshot is on its way."""

from __future__ import annotations

import hashlib
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import wait_for
from test_central_support import make_event

from central import writer as writer_module
from central.announce import Announcer
from central.config import HealthSettings
from central.health import HealthMonitor
from central.ingest import Ack, EventItem, Item, SnapshotItem, event_row
from central.live import LiveHub
from central.store import EventRow, Store
from central.writer import Writer

JPEG = b"\xff\xd8 writer test \xff\xd9"


class RecordingHub(LiveHub):
    """A hub with one pretend client that records what would be sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, Any]]] = []

    @property
    def client_count(self) -> int:
        return 1

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.sent.append((name, data))


def _writer(
    store: Store, hub: LiveHub, acks: list[Ack], wait_s: float = 1.0
) -> tuple[Writer, queue.Queue[Item]]:
    inbox: queue.Queue[Item] = queue.Queue()
    health = HealthMonitor(HealthSettings(), "Asia/Ho_Chi_Minh")
    writer = Writer(store, inbox, acks.extend, Announcer(store, hub, None, wait_s), health)
    return writer, inbox


def _item(payload: dict[str, Any], mid: int) -> EventItem:
    return EventItem(event_row(payload, time.time(), time.time()), Ack(1, mid, 1))


def test_failed_batch_is_retried_and_acknowledged_only_after_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    acks: list[Ack] = []
    writer, inbox = _writer(store, RecordingHub(), acks)
    real = store.insert_events
    calls = [0]

    def flaky(rows: list[EventRow]) -> list[EventRow]:
        calls[0] += 1
        if calls[0] == 1:
            assert acks == []  # nothing acknowledged before the commit
            raise sqlite3.OperationalError("database is locked")
        return real(rows)

    monkeypatch.setattr(store, "insert_events", flaky)
    inbox.put(_item(make_event(1), 11))
    inbox.put(_item(make_event(2), 12))
    writer.start()
    wait_for(lambda: writer.stored_events == 2, 5)
    writer.stop()
    assert [a.mid for a in acks] == [11, 12] and writer.errors == 1 and store.count_events() == 2
    store.close()


def test_a_database_that_is_away_is_waited_for_without_losing_or_acking_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight failures in a row (a PostgreSQL restart, a full disk) do not drop the batch: it is held,
    unacknowledged, with the watchdog fed, and commits once the database is back."""
    monkeypatch.setattr(writer_module, "MAX_RETRY_DELAY_S", 0.05)
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    acks: list[Ack] = []
    writer, inbox = _writer(store, RecordingHub(), acks)
    beats = [0]
    writer.heartbeat = lambda: beats.__setitem__(0, beats[0] + 1)
    real = store.insert_events
    calls = [0]

    def away(rows: list[EventRow]) -> list[EventRow]:
        calls[0] += 1
        if calls[0] <= 8:
            assert acks == []
            raise sqlite3.OperationalError("disk I/O error")
        return real(rows)

    monkeypatch.setattr(store, "insert_events", away)
    inbox.put(_item(make_event(1), 21))
    writer.start()
    wait_for(lambda: writer.stored_events == 1, 10)
    writer.stop()
    assert [a.mid for a in acks] == [21] and writer.errors == 8 and beats[0] >= 8
    store.close()


def test_a_batch_that_fails_for_another_reason_is_left_unacked_and_ingest_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "MAX_RETRY_DELAY_S", 0.05)
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    acks: list[Ack] = []
    writer, inbox = _writer(store, RecordingHub(), acks)
    real = store.insert_events
    poison = make_event(1)

    def buggy(rows: list[EventRow]) -> list[EventRow]:
        if any(r.event_id == poison["event_id"] for r in rows):
            raise ValueError("a bug, not the database")
        return real(rows)

    monkeypatch.setattr(store, "insert_events", buggy)
    inbox.put(_item(poison, 31))
    writer.start()
    wait_for(lambda: writer.errors == 3, 5)
    inbox.put(_item(make_event(2), 32))
    wait_for(lambda: writer.stored_events == 1, 5)
    writer.stop()
    assert [a.mid for a in acks] == [32]  # the broker redelivers 31 after a reconnect
    store.close()


def test_event_waits_for_its_snapshot_and_is_announced_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    hub = RecordingHub()
    writer, inbox = _writer(store, hub, [], wait_s=5.0)
    payload = make_event(1)
    sha = hashlib.sha256(JPEG).hexdigest()
    payload["snapshot"] = {"topic": "t", "sha256": sha, "bytes": len(JPEG)}
    plain = make_event(2)
    writer.start()
    inbox.put(_item(payload, 1))
    inbox.put(_item(plain, 2))
    wait_for(lambda: len(hub.sent) == 1, 5)
    assert hub.sent[0][1]["event_id"] == plain["event_id"]  # no snapshot expected: announced at once
    time.sleep(0.2)
    assert len(hub.sent) == 1  # the other one waits for its JPEG
    inbox.put(SnapshotItem(payload["event_id"], JPEG, time.time(), None, "n1"))
    wait_for(lambda: len(hub.sent) == 2, 5)
    name, data = hub.sent[1]
    assert name == "event" and data["event_id"] == payload["event_id"]
    assert data["snapshot_url"] == f"/api/snapshots/{sha}.jpg"
    time.sleep(0.2)
    assert len(hub.sent) == 2
    writer.stop()
    store.close()


def test_event_whose_snapshot_never_comes_is_announced_after_the_wait(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    hub = RecordingHub()
    writer, inbox = _writer(store, hub, [], wait_s=0.3)
    payload = make_event(1)
    payload["snapshot"] = {"topic": "t", "sha256": "a" * 64, "bytes": 10}
    writer.start()
    start = time.monotonic()
    inbox.put(_item(payload, 1))
    wait_for(lambda: len(hub.sent) == 1, 5)
    assert time.monotonic() - start >= 0.3 and hub.sent[0][1]["snapshot_url"] is None
    writer.stop()
    store.close()


# (case, items queued behind the first, items arriving 50 ms later, linger_s, batch_max, batch size)
FILL_CASES = [
    ("quiet-station-not-held", 0, 1, 10.0, 500, 1),
    ("load-waits-for-more", 1, 1, 10.0, 3, 3),
    ("load-waits-at-most-linger", 1, 0, 0.02, 500, 2),
    ("no-linger", 1, 1, 0.0, 500, 2),
    ("full-batch-not-held", 2, 1, 10.0, 3, 3),
]


@pytest.mark.parametrize(("queued", "later", "linger_s", "batch_max", "size"), [c[1:] for c in FILL_CASES],
                         ids=[c[0] for c in FILL_CASES])  # fmt: skip
def test_under_load_a_batch_waits_briefly_to_fill(
    tmp_path: Path, queued: int, later: int, linger_s: float, batch_max: int, size: int
) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    writer, inbox = _writer(store, RecordingHub(), [])
    writer.linger_s, writer.batch_max = linger_s, batch_max
    for i in range(queued):
        inbox.put(_item(make_event(i + 2), i + 2))

    def arrive() -> None:
        for i in range(later):
            inbox.put(_item(make_event(9 + i), 9 + i))

    timer = threading.Timer(0.05, arrive)
    timer.start()
    t0 = time.monotonic()
    batch = writer._fill([_item(make_event(1), 1)])
    elapsed = time.monotonic() - t0
    timer.join()
    assert len(batch) == size
    assert elapsed < 5.0  # never the whole linger of 10 s: a lone event or a full batch goes at once
    store.close()
