"""The SQLite store: versioned migrations, idempotent batches, retention by age and by disk budget."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_central_support import make_event

from central.ingest import event_row
from central.schema import MIGRATIONS
from central.store import Store

NOW = 1_795_000_000.0


def test_schema_is_versioned_and_migrations_run_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    store.close()
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")  # reopening applies nothing twice
    versions = [r[0] for r in store.conn().execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert store.conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "c.sqlite", tmp_path / "s").close()
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    with conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this aggregator"):
        Store(tmp_path / "c.sqlite", tmp_path / "s")


def test_batches_are_idempotent_on_event_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    rows = [event_row(make_event(i), NOW + i, NOW + i) for i in range(1, 4)]
    assert [r.event_id for r in store.insert_events([rows[0], rows[1], rows[0]])] == [
        rows[0].event_id,
        rows[1].event_id,
    ]
    assert [r.event_id for r in store.insert_events(rows)] == [rows[2].event_id]
    assert store.count_events() == 3
    store.close()


def test_retention_by_age_and_disk_budget_keeps_shared_files(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    old, mid, new = (make_event(i) for i in (1, 2, 3))
    store.insert_events(
        [event_row(old, NOW - 100 * 86400, NOW), event_row(mid, NOW - 10, NOW), event_row(new, NOW, NOW)]
    )
    shared = store.snapshots.put(b"\xff\xd8 shared")
    big = store.snapshots.put(b"\xff\xd8" + b"x" * 5000)
    store.link_snapshots(
        [
            (old["event_id"], shared, 9, NOW - 100 * 86400),
            (mid["event_id"], big, 5002, NOW - 10),
            (new["event_id"], shared, 9, NOW),
        ]
    )
    deleted_events, deleted_files = store.retain(max_age_s=30 * 86400, max_snapshot_bytes=10**6, now=NOW)
    assert (deleted_events, deleted_files) == (1, 0)  # the shared file is still linked by `new`
    assert store.snapshots.path_for(shared).exists() and store.get_event(old["event_id"]) is None
    deleted_events, deleted_files = store.retain(max_age_s=30 * 86400, max_snapshot_bytes=1000, now=NOW)
    assert (deleted_events, deleted_files) == (0, 1)  # the oldest link (the big one) goes first
    assert not store.snapshots.path_for(big).exists() and store.snapshots.path_for(shared).exists()
    mid_event = store.get_event(mid["event_id"])
    assert mid_event is not None and mid_event["snapshot_url"] is None
    store.close()


def test_snapshot_names_are_checked_before_touching_the_disk(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    for name in ("../../etc/passwd", "A" * 64, "a" * 63, "a" * 64 + "/x"):
        with pytest.raises(ValueError, match="not a sha256"):
            store.snapshots.path_for(name)
    store.close()
