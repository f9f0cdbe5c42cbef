"""The event store: SQLite in WAL mode or PostgreSQL, versioned migrations, idempotent batched inserts.

One writer thread (ingest) calls the batch methods; API request threads and the webhook worker read and
make small writes (acks, audit, queue updates) on their own thread-local connections. With SQLite, WAL
lets readers run beside the writer and `busy_timeout` serialises the few concurrent writes; PostgreSQL
does both itself. Inserts use `ON CONFLICT DO NOTHING` on the event id, so a re-delivered QoS 1 message
is stored once. Both engines run the same SQL (central/db.py holds the few differences).

Snapshots are linked by event id (the snapshot topic names it), so a snapshot may arrive before or after
its event; the link is joined at read time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central import storeretain
from central.clip_sql import ClipSql
from central.db import Conn, connect, is_postgres
from central.integrity import corruption_guard, verify_store
from central.queries import StoreReads
from central.retention import RetentionPolicy
from central.schema import migrate
from central.sequences import SequenceSql
from central.snapshot_sql import SnapshotSql
from central.snapshots import SnapshotFiles
from contract.times import iso_from_epoch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventRow:
    """A validated event ready to store; `payload` is the contract JSON object."""

    event_id: str
    node: str
    camera: str
    kind: str
    phase: str
    rule: str
    seq: int
    ts: str
    ts_epoch: float
    received_epoch: float
    classes: tuple[str, ...]
    payload: dict[str, Any]
    sig_status: str | None = None  # central/signatures.py: valid, unsigned, unknown_key, invalid


class Store(StoreReads, SnapshotSql, SequenceSql, ClipSql):
    """The event store; create once per process and share between threads.

    `db` is a SQLite file path or a `postgresql://user@host:port/dbname` URL; `password` (PostgreSQL only)
    comes from the configured secret, never from the URL.
    """

    def __init__(self, db: Path | str, snapshots_dir: Path, password: str | None = None) -> None:
        self.db: Path | str = db if is_postgres(db) else Path(db)
        self._password = password
        if isinstance(self.db, Path):
            self.db.parent.mkdir(parents=True, exist_ok=True)
        self.snapshots = SnapshotFiles(snapshots_dir)
        self._local = threading.local()
        self._all: list[Conn] = []
        self._all_lock = threading.Lock()
        try:
            with corruption_guard(self.label):  # a damaged file may fail already on opening
                self.migrate()
                verify_store(self.conn(), self.label)
        except BaseException:
            self.close()
            raise

    @property
    def label(self) -> str:
        """The database for log lines (a URL here never holds a password)."""
        return str(self.db)

    # -- connections -------------------------------------------------------------------------------
    def conn(self) -> Conn:
        """This thread's connection (autocommit; use `tx()` for writes); reopened if the server dropped it."""
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = connect(self.db, self._password)
            self._local.conn = conn
            with self._all_lock:
                self._all = [c for c in self._all if not c.closed]
                self._all.append(conn)
        return conn

    @contextmanager
    def tx(self) -> Iterator[Conn]:
        """A write transaction taken up front, so it never fails half-way on a lock."""
        conn = self.conn()
        conn.execute(conn.dialect.begin)
        try:
            yield conn
        except BaseException:
            if not conn.closed:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def checkpoint(self) -> None:
        """Copy SQLite's WAL back into the database without blocking the writer (call every second or so).

        PostgreSQL checkpoints on its own, so this is a no-op there.
        """
        if isinstance(self.db, Path):
            self.conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def migrate(self) -> int:
        """Bring the schema up to date (see central/schema.py); returns its version."""
        return migrate(self.conn(), self.label)

    # -- ingest (writer thread) --------------------------------------------------------------------
    def insert_events(self, rows: Sequence[EventRow]) -> list[EventRow]:
        """Store a batch; returns the rows that were new (duplicates, also within the batch, are dropped)."""
        if not rows:
            return []
        unique: dict[str, EventRow] = {}
        for row in rows:
            unique.setdefault(row.event_id, row)
        with self.tx() as conn:
            ids = list(unique)
            existing: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                existing.update(
                    r[0]
                    for r in conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk)
                )
            new = [r for r in unique.values() if r.event_id not in existing]
            conn.executemany(
                "INSERT INTO events (event_id, node, camera, kind, phase, rule, seq, ts, ts_epoch,"
                " received_epoch, classes, payload, sig_status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (event_id) DO NOTHING",
                [
                    (
                        r.event_id,
                        r.node,
                        r.camera,
                        r.kind,
                        r.phase,
                        r.rule,
                        r.seq,
                        r.ts,
                        r.ts_epoch,
                        r.received_epoch,
                        json.dumps(list(r.classes)),
                        json.dumps(r.payload, separators=(",", ":")),
                        r.sig_status,
                    )
                    for r in new
                ],
            )
        return new

    def link_snapshots(self, links: Sequence[tuple[str, str, int, float]]) -> list[str]:
        """Record (event_id, sha256, bytes, received_epoch); returns ids of stored events linked now."""
        if not links:
            return []
        with self.tx() as conn:
            conn.executemany(
                "INSERT INTO snapshot_links (event_id, sha256, bytes, received_epoch) VALUES (?,?,?,?)"
                " ON CONFLICT (event_id) DO UPDATE SET sha256=excluded.sha256, bytes=excluded.bytes,"
                " received_epoch=excluded.received_epoch",
                links,
            )
            marks = ",".join("?" * len(links))
            return [
                r[0]
                for r in conn.execute(
                    f"SELECT event_id FROM events WHERE event_id IN ({marks})", [link[0] for link in links]
                )
            ]

    def has_snapshot(self, event_id: str) -> bool:
        return (
            self.conn().execute("SELECT 1 FROM snapshot_links WHERE event_id=?", (event_id,)).fetchone()
            is not None
        )

    def upsert_node(self, node: str, state: str | None, seen: float, stats: dict[str, Any] | None) -> None:
        with self.tx() as conn:
            row = conn.execute("SELECT state FROM nodes WHERE node=?", (node,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO nodes (node, state, state_since, last_seen, stats) VALUES (?,?,?,?,?)",
                    (node, state or "online", seen, seen, json.dumps(stats) if stats is not None else None),
                )
                return
            if state is not None and state != row[0]:
                conn.execute("UPDATE nodes SET state=?, state_since=? WHERE node=?", (state, seen, node))
            conn.execute(
                "UPDATE nodes SET last_seen=CASE WHEN last_seen<? THEN ? ELSE last_seen END WHERE node=?",
                (seen, seen, node),
            )
            if stats is not None:
                conn.execute("UPDATE nodes SET stats=? WHERE node=?", (json.dumps(stats), node))

    # -- acknowledgements and audit ----------------------------------------------------------------
    def acknowledge(
        self, event_id: str, by: str, note: str, now: float, remote: str | None
    ) -> dict[str, Any] | None:
        """Mark an event acknowledged (the latest ack wins) and audit it; None when the event is unknown."""
        with self.tx() as conn:
            cur = conn.execute(
                "UPDATE events SET ack_by=?, ack_at=?, ack_note=? WHERE event_id=?",
                (by, iso_from_epoch(now), note, event_id),
            )
            if cur.rowcount == 0:
                return None
            conn.execute(
                "INSERT INTO audit (at_epoch, actor, action, target, detail, remote) VALUES (?,?,?,?,?,?)",
                (now, by, "ack", event_id, note, remote),
            )
        return self.get_event(event_id)

    def audit(
        self, actor: str, action: str, target: str | None, detail: str | None, remote: str | None
    ) -> None:
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO audit (at_epoch, actor, action, target, detail, remote) VALUES (?,?,?,?,?,?)",
                (time.time(), actor, action, target, detail, remote),
            )

    # -- retention (central/storeretain.py) -------------------------------------------------------
    def retain_policy(self, policy: RetentionPolicy, now: float) -> tuple[int, int]:
        """Apply the retention policy; returns (events deleted, snapshot files deleted)."""
        return storeretain.retain(self, policy, now)

    def retain(self, max_age_s: float, max_snapshot_bytes: int, now: float) -> tuple[int, int]:
        """One age for every kind and snapshot (the policy before ages per kind)."""
        return self.retain_policy(RetentionPolicy(max_age_s, {}, max_age_s, None, max_snapshot_bytes), now)
