"""Durable outbox: every event (and its snapshot) is stored in SQLite before it is published.

A row is deleted only after the broker's PUBACK, so events survive broker outages, network loss and a
killed or rebooted node, and replay in order with their original timestamps and sequence numbers.

Durability: the database runs in WAL mode. `synchronous=FULL` (the default) fsyncs the WAL at every
commit, so a stored event survives a power cut, which is how village boxes die; `NORMAL` only survives a
process crash (a power cut may roll back the last commits) and is offered for SD cards that are too slow.
The detection loop never waits for the fsync: the pipeline's snapshot worker calls `put`.

Bounds and drop policy (documented in docs/mqtt-api.md): stored bytes (payloads + JPEGs) are kept under
`max_mb`; when over, the oldest snapshots are dropped first (their events are rewritten with
`"snapshot": null`), then the oldest events, down to 90 % of the budget so pruning does not run at every
put. Events older than `max_age_h` are dropped with their snapshots. Every drop is counted in the `meta`
table, so the counters survive restarts and go out in the node's stats.

The sequence number is kept in `meta` too (not derived from the rowid), so it never goes backwards when
the table empties and SQLite would reuse ids.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.limits import DEFAULT_PREFIX
from contract.topics import topic_event, topic_snapshot
from edge.config import OutboxSettings
from edge.records import Event
from edge.transport.outbox_check import recover_if_corrupt
from edge.transport.wire import SnapshotMeta, encode, encode_event, event_payload

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PRUNE_TARGET = 0.9
AGE_CHECK_S = 60.0
_BATCH = 256

_DDL = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    event_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    jpeg BLOB NOT NULL,
    created_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_created ON events (created_ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value)
    VALUES ('next_seq', 1), ('dropped_events', 0), ('dropped_snapshots', 0), ('recovered', 0);
"""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored event ready to publish: its snapshot (if still stored) goes first."""

    seq: int
    event_id: str
    topic: str
    payload: bytes
    created_ts: float
    snapshot_topic: str | None
    snapshot: bytes | None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    dropped_events: int
    dropped_snapshots: int
    seq_next: int
    recovered: int = 0  # corrupt outbox files moved aside (metric roadwatch_outbox_recovered_total)

    def as_wire(self) -> dict[str, int]:
        """The `outbox` object of the stats payload."""
        return {
            "depth": self.depth,
            "dropped_events": self.dropped_events,
            "dropped_snapshots": self.dropped_snapshots,
        }


class Outbox:
    """SQLite outbox of one node. Thread-safe: `put` from the pipeline, `pending`/`ack` from the publisher."""

    def __init__(
        self,
        path: str | Path,
        settings: OutboxSettings | None = None,
        topic_prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
        sign: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings or OutboxSettings()
        self._sign = sign or (lambda payload: payload)  # edge/transport/signing.py
        self.path = Path(path)
        self.topic_prefix = topic_prefix
        self._clock = clock
        self._budget = int(self.settings.max_mb * 1_000_000)
        self._max_age_s = self.settings.max_age_h * 3600.0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovery = recover_if_corrupt(self.path)  # a corrupt file must not keep the node down
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={self.settings.synchronous}")
        self._db.executescript(_DDL)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if self.recovery is not None:
            self._db.execute(
                "UPDATE meta SET value = MAX(value, ?) WHERE key = 'next_seq'", (self.recovery.next_seq,)
            )
            self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'recovered'")
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self._next_seq = int(meta["next_seq"])
        self._dropped_events = int(meta["dropped_events"])
        self._dropped_snapshots = int(meta["dropped_snapshots"])
        self._recovered = int(meta["recovered"])
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        self._bytes = int(
            self._db.execute("SELECT COALESCE(SUM(length(payload)), 0) FROM events").fetchone()[0]
            + self._db.execute("SELECT COALESCE(SUM(length(jpeg)), 0) FROM snapshots").fetchone()[0]
        )
        self._last_age_check = 0.0
        if self._depth:
            log.info(
                "outbox %s: %d events waiting from a previous run (next seq %d)",
                self.path,
                self._depth,
                self._next_seq,
            )
        self.prune()

    def put(self, event: Event, snapshot_jpeg: bytes | None = None) -> int:
        """Store an event (and its JPEG) in one transaction; returns its sequence number.

        Storing the same event_id twice is a no-op that returns the first sequence number, so a retried
        put never publishes an event twice. Raises ValueError if the payload breaks the 64 KiB limit.
        """
        snap_topic = topic_snapshot(self.topic_prefix, event.node, event.camera, event.event_id)
        meta = SnapshotMeta.of(snap_topic, snapshot_jpeg) if snapshot_jpeg else None
        topic = topic_event(self.topic_prefix, event.node, event.camera, event.kind)
        now = self._clock()
        with self._lock:
            seq = self._next_seq
            payload = encode_event(self._sign(event_payload(event, seq, meta)))
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO events (seq, event_id, topic, payload, created_ts) VALUES (?, ?, ?, ?, ?)",
                    (seq, event.event_id, topic, payload, now),
                )
                if snapshot_jpeg:
                    self._db.execute(
                        "INSERT INTO snapshots (event_id, topic, jpeg, created_ts) VALUES (?, ?, ?, ?)",
                        (event.event_id, snap_topic, snapshot_jpeg, now),
                    )
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (seq + 1,))
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                row = self._db.execute(
                    "SELECT seq FROM events WHERE event_id = ?", (event.event_id,)
                ).fetchone()
                if row is None:
                    raise
                log.warning(
                    "camera %s: event %s is already in the outbox (seq %d)",
                    event.camera,
                    event.event_id,
                    row[0],
                )
                return int(row[0])
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._next_seq = seq + 1
            self._depth += 1
            self._bytes += len(payload) + (len(snapshot_jpeg) if snapshot_jpeg else 0)
            over = self._bytes > self._budget
        if over or now - self._last_age_check >= AGE_CHECK_S:
            self.prune()
        return seq

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxItem]:
        """Stored events with seq > after_seq, oldest first, with their snapshots."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.seq, e.event_id, e.topic, e.payload, e.created_ts, s.topic, s.jpeg FROM events e "
                "LEFT JOIN snapshots s ON s.event_id = e.event_id WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [
            OutboxItem(
                int(r[0]), r[1], r[2], bytes(r[3]), float(r[4]), r[5], None if r[6] is None else bytes(r[6])
            )
            for r in rows
        ]

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged events and their snapshots in one transaction; returns the count deleted."""
        keys = [(int(s),) for s in seqs]
        if not keys:
            return 0
        with self._lock:
            freed = 0
            deleted = 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key in keys:
                    row = self._db.execute(
                        "SELECT e.event_id, length(e.payload), COALESCE(length(s.jpeg), 0) FROM events e "
                        "LEFT JOIN snapshots s ON s.event_id = e.event_id WHERE e.seq = ?",
                        key,
                    ).fetchone()
                    if row is None:  # dropped by the policy while in flight, or acked twice
                        continue
                    self._db.execute("DELETE FROM snapshots WHERE event_id = ?", (row[0],))
                    self._db.execute("DELETE FROM events WHERE seq = ?", key)
                    freed += int(row[1]) + int(row[2])
                    deleted += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth -= deleted
            self._bytes -= freed
        return deleted

    def depth(self) -> int:
        """Events stored and not yet acknowledged."""
        return self._depth

    def stats(self) -> OutboxStats:
        with self._lock:
            return OutboxStats(
                self._depth,
                self._bytes,
                self._dropped_events,
                self._dropped_snapshots,
                self._next_seq,
                self._recovered,
            )

    def prune(self, now: float | None = None) -> tuple[int, int]:
        """Apply the age and size policy; returns (events dropped, snapshots dropped)."""
        now = self._clock() if now is None else now
        with self._lock:
            self._last_age_check = now
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ev, snaps = self._drop_old(now - self._max_age_s)
                if self._bytes > self._budget:
                    target = int(self._budget * PRUNE_TARGET)
                    snaps += self._drop_snapshots(target)
                    ev2, snaps2 = self._drop_events(target)
                    ev += ev2
                    snaps += snaps2
                if ev or snaps:
                    self._dropped_events += ev
                    self._dropped_snapshots += snaps
                    self._db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'dropped_events'", (self._dropped_events,)
                    )
                    self._db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'dropped_snapshots'",
                        (self._dropped_snapshots,),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if ev or snaps:
            log.warning(
                "outbox %s: dropped %d events and %d snapshots (size/age policy)", self.path, ev, snaps
            )
        return ev, snaps

    def _drop_old(self, cutoff: float) -> tuple[int, int]:
        rows = self._db.execute(
            "SELECT e.seq, e.event_id, length(e.payload), COALESCE(length(s.jpeg), -1) FROM events e "
            "LEFT JOIN snapshots s ON s.event_id = e.event_id WHERE e.created_ts < ?",
            (cutoff,),
        ).fetchall()
        return self._delete_events(rows)

    def _delete_events(self, rows: list[tuple[int, str, int, int]]) -> tuple[int, int]:
        snaps = 0
        for seq, event_id, plen, jlen in rows:
            if jlen >= 0:
                self._db.execute("DELETE FROM snapshots WHERE event_id = ?", (event_id,))
                self._bytes -= jlen
                snaps += 1
            self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
            self._bytes -= plen
        self._depth -= len(rows)
        return len(rows), snaps

    def _drop_snapshots(self, target: int) -> int:
        dropped = 0
        while self._bytes > target:
            rows = self._db.execute(
                "SELECT event_id, length(jpeg) FROM snapshots ORDER BY created_ts, rowid LIMIT ?", (_BATCH,)
            ).fetchall()
            if not rows:
                break
            for event_id, jlen in rows:
                if self._bytes <= target:
                    break
                self._db.execute("DELETE FROM snapshots WHERE event_id = ?", (event_id,))
                self._bytes -= int(jlen)
                dropped += 1
                self._forget_snapshot(event_id)
        return dropped

    def _forget_snapshot(self, event_id: str) -> None:
        """Rewrite the event with `"snapshot": null`: the station must not wait for a lost JPEG."""
        row = self._db.execute("SELECT payload FROM events WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            return
        payload = json.loads(bytes(row[0]))
        payload["snapshot"] = None
        data = encode(self._sign(payload))
        self._db.execute("UPDATE events SET payload = ? WHERE event_id = ?", (data, event_id))
        self._bytes += len(data) - len(bytes(row[0]))

    def _drop_events(self, target: int) -> tuple[int, int]:
        ev = snaps = 0
        while self._bytes > target:
            rows = self._db.execute(
                "SELECT e.seq, e.event_id, length(e.payload), COALESCE(length(s.jpeg), -1) FROM events e "
                "LEFT JOIN snapshots s ON s.event_id = e.event_id ORDER BY e.seq LIMIT ?",
                (_BATCH,),
            ).fetchall()
            if not rows:
                break
            chosen = []
            remaining = self._bytes
            for row in rows:
                if remaining <= target:
                    break
                chosen.append(row)
                remaining -= int(row[2]) + max(int(row[3]), 0)
            e, s = self._delete_events(chosen)
            ev += e
            snaps += s
        return ev, snaps

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
