"""The event store: SQLite in WAL mode, versioned migrations, idempotent batched inserts.

One writer thread (ingest) calls the batch methods; API request threads and the webhook worker read and
make small writes (acks, audit, queue updates) on their own thread-local connections. WAL lets readers
run beside the writer, and `busy_timeout` serialises the few concurrent writes. Inserts use
`INSERT OR IGNORE` on the event id, so a re-delivered QoS 1 message is stored once.

Snapshots are linked by event id (the snapshot topic names it), so a snapshot may arrive before or after
its event; the link is joined at read time. PostgreSQL is not implemented yet (see docs/central.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.contract import iso_from_epoch
from central.snapshots import SnapshotFiles

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    # 1: events, snapshots, nodes, sequence gaps, audit, webhook queue
    """
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY, node TEXT NOT NULL, camera TEXT NOT NULL, kind TEXT NOT NULL,
        phase TEXT NOT NULL, rule TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL,
        ts_epoch REAL NOT NULL,
        received_epoch REAL NOT NULL, classes TEXT NOT NULL, payload TEXT NOT NULL,
        ack_by TEXT, ack_at TEXT, ack_note TEXT
    );
    CREATE INDEX events_ts ON events (ts_epoch);
    CREATE INDEX events_camera_ts ON events (camera, ts_epoch);
    CREATE INDEX events_kind_ts ON events (kind, ts_epoch);
    CREATE TABLE snapshot_links (
        event_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, received_epoch REAL NOT NULL
    );
    CREATE INDEX snapshot_links_sha ON snapshot_links (sha256);
    CREATE INDEX snapshot_links_received ON snapshot_links (received_epoch);
    CREATE TABLE nodes (
        node TEXT PRIMARY KEY, state TEXT NOT NULL, state_since REAL NOT NULL, last_seen REAL NOT NULL,
        stats TEXT
    );
    CREATE TABLE seq_state (node TEXT PRIMARY KEY, max_seq INTEGER NOT NULL);
    CREATE TABLE seq_gaps (
        id INTEGER PRIMARY KEY, node TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
        detected_epoch REAL NOT NULL, resolved_epoch REAL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY, at_epoch REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT, detail TEXT, remote TEXT
    );
    CREATE TABLE webhook_queue (
        id INTEGER PRIMARY KEY, webhook TEXT NOT NULL, rule TEXT NOT NULL, event_id TEXT NOT NULL,
        body TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_epoch REAL NOT NULL,
        last_error TEXT, created_epoch REAL NOT NULL, updated_epoch REAL NOT NULL
    );
    CREATE INDEX webhook_due ON webhook_queue (state, next_epoch);
    """,
)


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


@dataclass(frozen=True, slots=True)
class EventFilter:
    since: float | None = None
    until: float | None = None
    kind: str | None = None
    camera: str | None = None
    node: str | None = None
    cls: str | None = None
    phase: str | None = None
    acknowledged: bool | None = None


_EVENT_COLUMNS = (
    "e.event_id, e.payload, e.received_epoch, e.ack_by, e.ack_at, e.ack_note, s.sha256 AS snap_sha"
)


def event_json(row: sqlite3.Row) -> dict[str, Any]:
    """The API's Event: the contract payload plus received_at, snapshot_url and ack."""
    out: dict[str, Any] = json.loads(row["payload"])
    out["received_at"] = iso_from_epoch(row["received_epoch"])
    sha = row["snap_sha"]
    out["snapshot_url"] = f"/api/snapshots/{sha}.jpg" if sha else None
    out["ack"] = (
        {"by": row["ack_by"], "at": row["ack_at"], "note": row["ack_note"]} if row["ack_by"] else None
    )
    return out


class Store:
    """SQLite event store; create once per process and share between threads."""

    def __init__(self, db_path: Path, snapshots_dir: Path) -> None:
        self.db_path = db_path
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.snapshots = SnapshotFiles(snapshots_dir)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.migrate()

    # -- connections -------------------------------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit off; use `tx()` for writes)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=10.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            # no checkpoint inside a commit (its fsync would stall ingest); `checkpoint()` runs beside it
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so it never fails half-way on a lock."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    def checkpoint(self) -> None:
        """Copy the WAL back into the database without blocking the writer (call every second or so)."""
        self.conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def migrate(self) -> int:
        """Apply the migrations this file has and the database lacks; returns the schema version."""
        conn = self.conn()
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = int(row[0] or 0)
        if current > len(MIGRATIONS):
            raise RuntimeError(f"database schema {current} is newer than this aggregator ({len(MIGRATIONS)})")
        for version in range(current + 1, len(MIGRATIONS) + 1):
            log.info("migrating %s to schema version %d", self.db_path, version)
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[version - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return len(MIGRATIONS)

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
                "INSERT OR IGNORE INTO events (event_id, node, camera, kind, phase, rule, seq, ts, ts_epoch,"
                " received_epoch, classes, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
                "INSERT OR REPLACE INTO snapshot_links (event_id, sha256, bytes, received_epoch)"
                " VALUES (?,?,?,?)",
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

    def track_sequences(self, seqs: Sequence[tuple[str, int]], now: float) -> None:
        """Record gaps in each node's event sequence and resolve the ones that late events fill.

        A sequence far below the maximum that fills no gap means the node restarted its counter; that
        resets the maximum instead of inventing a gap.
        """
        if not seqs:
            return
        with self.tx() as conn:
            for node, seq in seqs:
                row = conn.execute("SELECT max_seq FROM seq_state WHERE node=?", (node,)).fetchone()
                top = int(row[0]) if row else 0
                if seq > top:
                    if seq > top + 1 and top > 0:
                        conn.execute(
                            "INSERT INTO seq_gaps (node, first_seq, last_seq, detected_epoch)"
                            " VALUES (?,?,?,?)",
                            (node, top + 1, seq - 1, now),
                        )
                        log.warning("node %s: sequence gap %d..%d", node, top + 1, seq - 1)
                    conn.execute("INSERT OR REPLACE INTO seq_state (node, max_seq) VALUES (?,?)", (node, seq))
                    continue
                gap = conn.execute(
                    "SELECT id, first_seq, last_seq FROM seq_gaps WHERE node=? AND resolved_epoch IS NULL"
                    " AND first_seq<=? AND last_seq>=?",
                    (node, seq, seq),
                ).fetchone()
                if gap is None:
                    if seq == 1:
                        log.info("node %s restarted its event sequence", node)
                        conn.execute("UPDATE seq_state SET max_seq=? WHERE node=?", (seq, node))
                    continue
                gid, first, last = int(gap[0]), int(gap[1]), int(gap[2])
                conn.execute("UPDATE seq_gaps SET resolved_epoch=? WHERE id=?", (now, gid))
                for lo, hi in ((first, seq - 1), (seq + 1, last)):
                    if lo <= hi:  # the unfilled rest stays open, keeping its detection time
                        conn.execute(
                            "INSERT INTO seq_gaps (node, first_seq, last_seq, detected_epoch)"
                            " SELECT node, ?, ?, detected_epoch FROM seq_gaps WHERE id=?",
                            (lo, hi, gid),
                        )

    def open_gaps(self, node: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT node, first_seq, last_seq, detected_epoch FROM seq_gaps WHERE resolved_epoch IS NULL"
        args: list[Any] = []
        if node is not None:
            sql += " AND node=?"
            args.append(node)
        return [
            {"node": r[0], "first_seq": r[1], "last_seq": r[2], "detected_at": iso_from_epoch(r[3])}
            for r in self.conn().execute(sql + " ORDER BY node, first_seq", args)
        ]

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
            conn.execute("UPDATE nodes SET last_seen=MAX(last_seen, ?) WHERE node=?", (seen, node))
            if stats is not None:
                conn.execute("UPDATE nodes SET stats=? WHERE node=?", (json.dumps(stats), node))

    # -- reads (API) -------------------------------------------------------------------------------
    def get_event(self, event_id: str) -> dict[str, Any] | None:
        row = (
            self.conn()
            .execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e LEFT JOIN snapshot_links s ON s.event_id = e.event_id"
                " WHERE e.event_id=?",
                (event_id,),
            )
            .fetchone()
        )
        return event_json(row) if row else None

    def list_events(self, flt: EventFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Newest first; returns one page and the total that matches."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("e.kind", flt.kind),
            ("e.camera", flt.camera),
            ("e.node", flt.node),
            ("e.phase", flt.phase),
        ):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if flt.since is not None:
            where.append("e.ts_epoch>=?")
            args.append(flt.since)
        if flt.until is not None:
            where.append("e.ts_epoch<?")
            args.append(flt.until)
        if flt.cls is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(e.classes) WHERE json_each.value=?)")
            args.append(flt.cls)
        if flt.acknowledged is not None:
            where.append("e.ack_by IS NOT NULL" if flt.acknowledged else "e.ack_by IS NULL")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        conn = self.conn()
        total = int(conn.execute(f"SELECT COUNT(*) FROM events e{clause}", args).fetchone()[0])
        rows = conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events e"
            f" LEFT JOIN snapshot_links s ON s.event_id = e.event_id{clause}"
            " ORDER BY e.ts_epoch DESC, e.event_id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [event_json(r) for r in rows], total

    def count_events(self) -> int:
        return int(self.conn().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def event_ids(self) -> list[str]:
        return [r[0] for r in self.conn().execute("SELECT event_id FROM events")]

    def counts(
        self, since: float | None, until: float | None, camera: str | None, rule: str | None
    ) -> list[dict[str, Any]]:
        """Line crossings per hour, node, camera, line rule, direction and class."""
        where = ["kind='line_crossing'"]
        args: list[Any] = []
        for cond, value in (
            ("ts_epoch>=?", since),
            ("ts_epoch<?", until),
            ("camera=?", camera),
            ("rule=?", rule),
        ):
            if value is not None:
                where.append(cond)
                args.append(value)
        rows = (
            self.conn()
            .execute(
                "SELECT strftime('%Y-%m-%dT%H:00:00Z', ts_epoch, 'unixepoch') AS hour, node, camera, rule,"
                " json_extract(payload, '$.measurements.direction') AS direction,"
                " json_extract(payload, '$.classes[0]') AS cls, COUNT(*) AS n FROM events"
                f" WHERE {' AND '.join(where)} GROUP BY hour, node, camera, rule, direction, cls"
                " ORDER BY hour, node, camera, rule, direction, cls",
                args,
            )
            .fetchall()
        )
        return [
            {
                "hour": r[0],
                "node": r[1],
                "camera": r[2],
                "rule": r[3],
                "direction": r[4],
                "class": r[5],
                "count": r[6],
            }
            for r in rows
        ]

    def nodes(self) -> list[dict[str, Any]]:
        out = []
        for r in self.conn().execute(
            "SELECT node, state, state_since, last_seen, stats FROM nodes ORDER BY node"
        ):
            stats = json.loads(r[4]) if r[4] else {}
            cameras = [
                {
                    "camera": cam,
                    "stream_state": c.get("stream_state"),
                    "fps": c.get("fps"),
                    "inference_ms": c.get("inference_ms"),
                    "dropped_frames": c.get("dropped_frames"),
                }
                for cam, c in sorted((stats.get("cameras") or {}).items())
            ]
            out.append(
                {
                    "node": r[0],
                    "state": r[1],
                    "state_since": iso_from_epoch(r[2]),
                    "last_seen": iso_from_epoch(r[3]),
                    "cameras": cameras,
                }
            )
        return out

    def node(self, node: str) -> dict[str, Any] | None:
        return next((n for n in self.nodes() if n["node"] == node), None)

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

    def audit_log(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        conn = self.conn()
        total = int(conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
        rows = conn.execute(
            "SELECT id, at_epoch, actor, action, target, detail, remote FROM audit"
            " ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        items = [
            {
                "id": r[0],
                "at": iso_from_epoch(r[1]),
                "actor": r[2],
                "action": r[3],
                "target": r[4],
                "detail": r[5],
                "remote": r[6],
            }
            for r in rows
        ]
        return items, total

    # -- retention ---------------------------------------------------------------------------------
    def retain(self, max_age_s: float, max_snapshot_bytes: int, now: float) -> tuple[int, int]:
        """Delete events and snapshot links older than `max_age_s`, then the oldest snapshots over budget.

        Returns (events deleted, snapshot files deleted). A file is removed only when no link names it.
        """
        cutoff = now - max_age_s
        with self.tx() as conn:
            n_events = conn.execute("DELETE FROM events WHERE ts_epoch<?", (cutoff,)).rowcount
            doomed = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT sha256 FROM snapshot_links WHERE received_epoch<?", (cutoff,)
                )
            ]
            conn.execute("DELETE FROM snapshot_links WHERE received_epoch<?", (cutoff,))
            conn.execute("DELETE FROM seq_gaps WHERE detected_epoch<?", (cutoff,))
            conn.execute("DELETE FROM webhook_queue WHERE state='delivered' AND updated_epoch<?", (cutoff,))
            total = int(conn.execute("SELECT COALESCE(SUM(bytes),0) FROM snapshot_links").fetchone()[0])
            if total > max_snapshot_bytes:
                for event_id, sha, size in conn.execute(
                    "SELECT event_id, sha256, bytes FROM snapshot_links ORDER BY received_epoch"
                ).fetchall():
                    if total <= max_snapshot_bytes:
                        break
                    conn.execute("DELETE FROM snapshot_links WHERE event_id=?", (event_id,))
                    doomed.append(sha)
                    total -= int(size)
            orphans = [
                sha
                for sha in set(doomed)
                if conn.execute("SELECT 1 FROM snapshot_links WHERE sha256=?", (sha,)).fetchone() is None
            ]
        for sha in orphans:
            self.snapshots.delete(sha)
        if n_events or orphans:
            log.info("retention: deleted %d events and %d snapshot files", n_events, len(orphans))
        return n_events, len(orphans)
