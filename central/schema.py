"""The store's schema, as numbered migrations applied in order (table `schema_version`).

Never edit a released migration: append a new one. A database newer than the code is refused, so an
older aggregator cannot write into a schema it does not know. Migrations are written for SQLite and
`Dialect.ddl` translates their column types for PostgreSQL, so both engines share one numbering.
"""

from __future__ import annotations

import logging

from central.db import Conn

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
    # 2: login sessions and forwarding throttles survive a restart (an upgrade logs nobody out and
    # does not repeat an alert the throttle had held back)
    """
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, created_epoch REAL NOT NULL,
        expires_epoch REAL NOT NULL
    );
    CREATE INDEX sessions_expires ON sessions (expires_epoch);
    CREATE TABLE forward_throttle (
        forward_rule TEXT NOT NULL, node TEXT NOT NULL, camera TEXT NOT NULL, event_rule TEXT NOT NULL,
        last_epoch REAL NOT NULL, PRIMARY KEY (forward_rule, node, camera, event_rule)
    );
    """,
    # 3: snapshots that arrived before their event, under their own per-node quota (central/binding.py)
    """
    CREATE TABLE snapshot_orphans (
        event_id TEXT NOT NULL, node TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
        received_epoch REAL NOT NULL, PRIMARY KEY (event_id, node, sha256)
    );
    CREATE INDEX snapshot_orphans_node ON snapshot_orphans (node);
    CREATE INDEX snapshot_orphans_sha ON snapshot_orphans (sha256);
    CREATE INDEX snapshot_orphans_received ON snapshot_orphans (received_epoch);
    """,
    # 4: sequence tracking tells a node restart (newer events, generation + 1) from a replayed old number
    """
    ALTER TABLE seq_state ADD COLUMN max_ts_epoch REAL NOT NULL DEFAULT 0;
    ALTER TABLE seq_state ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE seq_state ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE seq_gaps ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: how each event's signature stood when it arrived (central/signatures.py); NULL: not checked
    """
    ALTER TABLE events ADD COLUMN sig_status TEXT;
    """,
    # 6: which events had their snapshot (or clip) removed by retention, so the dashboard says "expired"
    """
    CREATE TABLE media_expired (event_id TEXT PRIMARY KEY, snapshot_epoch REAL, clip_epoch REAL);
    """,
    # 7: event video clips fetched from nodes (central/clipfetch.py): state per event, the file by sha256
    """
    CREATE TABLE clips (
        event_id TEXT PRIMARY KEY, node TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
        sha256 TEXT, bytes INTEGER NOT NULL, duration_s REAL NOT NULL, start_epoch REAL NOT NULL,
        requested_epoch REAL NOT NULL, updated_epoch REAL NOT NULL
    );
    CREATE INDEX clips_sha ON clips (sha256);
    CREATE INDEX clips_updated ON clips (updated_epoch);
    """,
)


def migrate(conn: Conn, label: str) -> int:
    """Apply the migrations the database lacks, each in its own transaction; returns the schema version."""
    lock = conn.dialect.schema_lock
    if lock is not None:
        conn.execute(lock[0])
    try:
        return _migrate(conn, label)
    finally:
        if lock is not None and not conn.closed:
            conn.execute(lock[1])


def _migrate(conn: Conn, label: str) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    while True:
        conn.execute(conn.dialect.begin)  # SQLite's write lock: another process may have migrated meanwhile
        try:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema {current} is newer than this aggregator ({len(MIGRATIONS)})"
                )
            if current == len(MIGRATIONS):
                conn.execute("COMMIT")
                return current
            version = current + 1
            log.info("migrating %s to schema version %d", label, version)
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(conn.dialect.ddl(statement))
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
