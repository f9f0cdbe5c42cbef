"""The durable outbox: ordering, sequence numbers across restarts, acks, and the drop policy."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from edge.config import OutboxSettings
from edge.events import EventFactory
from edge.records import Event
from edge.transport.outbox import Outbox

TS = 1795878000.0


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": kind}


FACTORY = EventFactory("n1", "gate", "UTC", texts=_texts)


def ev(i: int = 0) -> Event:
    return FACTORY.make("line_crossing", "north", TS + i, classes=("car",), track_ids=(i,))


class Clock:
    def __init__(self, t: float = TS) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_put_assigns_increasing_seq_and_pending_is_in_order(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        events = [ev(i) for i in range(5)]
        seqs = [box.put(e, b"JPEG%d" % i if i % 2 == 0 else None) for i, e in enumerate(events)]
        assert seqs == [1, 2, 3, 4, 5]
        items = box.pending(10)
        assert [it.seq for it in items] == seqs
        assert [it.event_id for it in items] == [e.event_id for e in events]
        assert items[0].topic == "roadwatch/v1/n1/gate/events/line_crossing"
        assert items[0].snapshot == b"JPEG0"
        assert items[0].snapshot_topic == f"roadwatch/v1/n1/gate/snapshots/{events[0].event_id}"
        assert items[1].snapshot is None and items[1].snapshot_topic is None
        first = json.loads(items[0].payload)
        assert first["seq"] == 1 and first["snapshot"]["bytes"] == 5
        assert json.loads(items[1].payload)["snapshot"] is None
        assert [it.seq for it in box.pending(2, after_seq=2)] == [3, 4]
        assert box.depth() == 5


def test_ack_deletes_event_and_snapshot(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        for i in range(3):
            box.put(ev(i), b"x" * 100)
        assert box.ack([1, 3]) == 2
        assert box.ack([1]) == 0  # a second PUBACK for the same row is harmless
        assert [it.seq for it in box.pending(10)] == [2]
        assert box.depth() == 1
        assert box.stats().bytes == len(box.pending(1)[0].payload) + 100
    db = sqlite3.connect(tmp_path / "o.sqlite")
    assert db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 1


def test_seq_survives_restart_and_never_goes_back(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        assert [box.put(ev(i)) for i in range(3)] == [1, 2, 3]
        box.ack([1, 2, 3])  # the table is empty now; SQLite would reuse rowid 1
    with Outbox(path) as box:
        assert box.put(ev(10)) == 4
        assert box.stats().seq_next == 5


def test_unacked_events_are_there_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    events = [ev(i) for i in range(4)]
    with Outbox(path) as box:
        for e in events:
            box.put(e, b"jpg")
        box.ack([1])
    with Outbox(path) as box:
        items = box.pending(10)
        assert [it.event_id for it in items] == [e.event_id for e in events[1:]]
        assert all(it.snapshot == b"jpg" for it in items)
        assert box.depth() == 3


def test_same_event_is_never_stored_twice(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        e = ev()
        assert box.put(e, b"a") == 1
        assert box.put(e, b"a") == 1
        assert box.depth() == 1
        assert box.put(ev(1)) == 2  # the refused duplicate did not consume a sequence number


def test_wal_and_synchronous_mode(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", OutboxSettings(synchronous="NORMAL")) as box:
        box.put(ev())
        db = box._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with Outbox(tmp_path / "p.sqlite") as box:
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL by default


def test_size_policy_drops_oldest_snapshots_first(tmp_path: Path) -> None:
    # 60 kB budget, 10 kB snapshots: the seventh put goes over and the oldest snapshots go.
    settings = OutboxSettings(max_mb=0.06)
    with Outbox(tmp_path / "o.sqlite", settings) as box:
        for i in range(7):
            box.put(ev(i), bytes(10_000))
        stats = box.stats()
        assert stats.bytes <= 0.9 * 60_000
        assert stats.dropped_events == 0
        assert stats.dropped_snapshots == 2
        items = box.pending(10)
        assert [it.seq for it in items] == [1, 2, 3, 4, 5, 6, 7]  # every event is still there
        assert [it.snapshot is None for it in items] == [True, True] + [False] * 5
        # The events that lost their JPEG say so, so the station does not wait for it.
        assert json.loads(items[0].payload)["snapshot"] is None
        assert json.loads(items[2].payload)["snapshot"] is not None


def test_size_policy_drops_oldest_events_when_no_snapshot_is_left(tmp_path: Path) -> None:
    settings = OutboxSettings(max_mb=0.003)  # 3 kB: about a dozen small events
    with Outbox(tmp_path / "o.sqlite", settings) as box:
        for i in range(40):
            box.put(ev(i))
        stats = box.stats()
        assert stats.bytes <= 3000
        assert stats.dropped_events > 0 and stats.dropped_snapshots == 0
        seqs = [it.seq for it in box.pending(100)]
        assert seqs == list(range(41 - len(seqs), 41))  # the newest are kept, in order
        assert stats.dropped_events + len(seqs) == 40
    with Outbox(tmp_path / "o.sqlite", settings) as box:  # counters are persisted
        assert box.stats().dropped_events == stats.dropped_events


def test_age_policy_drops_old_events_with_their_snapshots(tmp_path: Path) -> None:
    clock = Clock()
    settings = OutboxSettings(max_age_h=1.0)
    with Outbox(tmp_path / "o.sqlite", settings, clock=clock) as box:
        box.put(ev(0), b"old")
        clock.t += 1800
        box.put(ev(1))
        clock.t += 1801  # the first is now 3601 s old, the second 1801 s
        assert box.prune() == (1, 1)
        assert [it.seq for it in box.pending(10)] == [2]
        assert box.stats().dropped_snapshots == 1


def test_concurrent_puts_get_unique_contiguous_seqs(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", OutboxSettings(synchronous="NORMAL")) as box:
        got: list[int] = []
        lock = threading.Lock()

        def worker(base: int) -> None:
            for i in range(50):
                seq = box.put(ev(base + i))
                with lock:
                    got.append(seq)

        threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(1, 151))


def test_oversized_payload_is_refused(tmp_path: Path) -> None:
    big = FACTORY.make("line_crossing", "n", TS, measurements={f"k{i}": "v" * 1024 for i in range(64)})
    with Outbox(tmp_path / "o.sqlite") as box:
        with pytest.raises(ValueError, match="65536"):
            box.put(big)
        assert box.depth() == 0
        assert box.put(ev()) == 1
