"""The store on both engines (SQLite and a real PostgreSQL): versioned migrations, idempotent batches,
retention by age and by disk budget, and the same answers from every query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import Postgres
from test_central_support import make_event

from central.db import StoreRefusedError, connect
from central.forwardstate import deadletters, enqueue_webhooks, queue_counts, requeue
from central.ingest import event_row
from central.queries import EventFilter
from central.schema import MIGRATIONS
from central.store import Store

NOW = 1_795_000_000.0

OpenStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens a Store on one database (each call reopens the same one); closes them all afterwards."""
    opened: list[Store] = []
    if request.param == "sqlite":
        target: Path | str = tmp_path / "c.sqlite"
        password = None
    else:
        server: Postgres = request.getfixturevalue("postgres_server")
        target, password = server.create_database(), server.password

    def open_() -> Store:
        opened.append(Store(target, tmp_path / "s", password))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()


def test_schema_is_versioned_and_migrations_run_once(open_store: OpenStore) -> None:
    open_store().close()
    store = open_store()  # reopening applies nothing twice
    versions = [r[0] for r in store.conn().execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    if store.conn().dialect.name == "sqlite":
        assert store.conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    else:  # REAL became double precision: epochs keep their milliseconds
        kind = "SELECT data_type FROM information_schema.columns WHERE table_name=? AND column_name=?"
        assert store.conn().execute(kind, ("events", "ts_epoch")).fetchone()[0] == "double precision"


def test_a_version_1_database_is_upgraded_in_place(open_store: OpenStore) -> None:
    """An aggregator upgraded over an existing database keeps its events and gains the new tables."""
    store = open_store()
    store.insert_events([event_row(make_event(1), NOW, NOW)])
    with store.tx() as conn:  # wind the schema back to version 1, as the first release left it
        conn.execute("DROP TABLE sessions")
        conn.execute("DROP TABLE forward_throttle")
        conn.execute("DROP TABLE snapshot_orphans")  # version 3
        for table, column in (("seq_state", "max_ts_epoch"), ("seq_state", "generation"),
                              ("seq_state", "replays"), ("seq_gaps", "generation")):  # fmt: skip
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # version 4
        conn.execute("ALTER TABLE events DROP COLUMN sig_status")  # version 5
        conn.execute("DROP TABLE media_expired")  # version 6
        conn.execute("DROP TABLE clips")  # version 7
        conn.execute("DELETE FROM schema_version WHERE version > 1")
    store.close()
    upgraded = open_store()
    versions = [r[0] for r in upgraded.conn().execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert upgraded.count_events() == 1
    assert upgraded.conn().execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


def test_a_newer_database_is_refused(open_store: OpenStore) -> None:
    store = open_store()
    with store.tx() as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    store.close()
    with pytest.raises(RuntimeError, match="newer than this aggregator"):
        open_store()


def test_aggregators_starting_together_migrate_once(open_store: OpenStore) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(), range(4)))
    versions = [r[0] for r in stores[0].conn().execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_many_connections_opening_a_fresh_sqlite_file_all_get_wal(tmp_path: Path) -> None:
    """The WAL switch races at first start (SQLite refuses it at once, busy handler or not)."""
    for round_ in range(40):
        path = tmp_path / f"fresh{round_}.sqlite"
        with ThreadPoolExecutor(6) as pool:
            conns = list(pool.map(connect, [path] * 6))
        modes = {c.execute("PRAGMA journal_mode").fetchone()[0] for c in conns}
        assert modes == {"wal"}
        for conn in conns:
            conn.close()


def test_batches_are_idempotent_on_event_id(store: Store) -> None:
    rows = [event_row(make_event(i), NOW + i, NOW + i) for i in range(1, 4)]
    assert [r.event_id for r in store.insert_events([rows[0], rows[1], rows[0]])] == [
        rows[0].event_id,
        rows[1].event_id,
    ]
    assert [r.event_id for r in store.insert_events(rows)] == [rows[2].event_id]
    assert store.count_events() == 3


def test_retention_by_age_and_disk_budget_keeps_shared_files(store: Store) -> None:
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


def test_snapshot_names_are_checked_before_touching_the_disk(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    for name in ("../../etc/passwd", "A" * 64, "a" * 63, "a" * 64 + "/x"):
        with pytest.raises(ValueError, match="not a sha256"):
            store.snapshots.path_for(name)
    store.close()


def exercise(store: Store) -> dict[str, Any]:
    """Every write and read the aggregator makes, on fixed inputs; returns what the reads answered."""
    hour = 3600.0 * (NOW // 3600)
    events = [
        make_event(1, ts=hour + 10),
        make_event(2, ts=hour + 20, classes=["truck"], measurements={"direction": "out"}),
        make_event(3, ts=hour + 3700, classes=["car", "truck"], measurements={"direction": 2}),
        make_event(4, ts=hour + 3800, measurements={}),
        make_event(7, ts=hour + 3900, kind="speeding", camera="lane"),
        make_event(1, node="n2", ts=hour + 30),
    ]
    for i, e in enumerate(events):
        e["event_id"] = f"00000000-0000-4000-8000-{i:012d}"
    rows = [event_row(e, hour + 10 + i, NOW) for i, e in enumerate(events)]
    store.insert_events(rows)
    store.track_sequences([(r.node, r.seq, r.ts_epoch) for r in rows], NOW)
    store.track_sequences([("n1", 6, hour)], NOW + 1)  # fills the middle of gap 5..6
    sha = store.snapshots.put(b"\xff\xd8 jpeg")
    linked = store.link_snapshots([(events[0]["event_id"], sha, 7, NOW), ("not-yet-stored", sha, 7, NOW)])
    store.link_snapshots([(events[0]["event_id"], sha, 7, NOW + 5)])  # a re-delivered snapshot
    store.upsert_node("n1", "online", NOW, {"cameras": {"gate": {"fps": 5.0, "stream_state": "ok"}}})
    store.upsert_node("n1", None, NOW - 50, None)  # a late message does not move last_seen back
    store.upsert_node("n1", "offline", NOW + 20, None)
    acked = store.acknowledge(events[1]["event_id"], "ops", "seen", NOW + 30, "127.0.0.1")
    store.audit("ops", "login", None, "operator", "127.0.0.1")
    enqueue_webhooks(store, ["a", "b"], rule="r1", event_id=events[0]["event_id"], body="{}", now=NOW)
    with store.tx() as conn:
        conn.execute("UPDATE webhook_queue SET state='dead', last_error='HTTP 500' WHERE webhook='b'")
    dead = deadletters(store)
    requeued = requeue(store, int(dead[0][0]["id"]))

    def page(flt: EventFilter) -> tuple[list[str], int]:
        items, total = store.list_events(flt, limit=3, offset=0)
        return [e["event_id"][-2:] for e in items], total

    return {
        "linked": linked,
        "has_snapshot": store.has_snapshot(events[0]["event_id"]),
        "event0": store.get_event(events[0]["event_id"]),
        "acked": acked,
        "all": page(EventFilter()),
        "trucks": page(EventFilter(cls="truck")),
        "acknowledged": page(EventFilter(acknowledged=True)),
        "speeding_after": page(EventFilter(kind="speeding", since=hour + 10)),
        "counts": store.counts(None, None, None, None),
        "gaps": store.open_gaps(),
        "nodes": store.nodes(),
        "audit": [{k: v for k, v in a.items() if k not in ("at", "id")} for a in store.audit_log(10, 0)[0]],
        "dead": [{k: v for k, v in d.items() if k != "id"} for d in dead[0]],
        "requeued": requeued,
        "queue": queue_counts(store),
    }


def test_every_query_answers_as_specified(store: Store) -> None:
    out = exercise(store)  # NOW is 2026-11-18T11:06:40Z
    assert out["linked"] == ["00000000-0000-4000-8000-000000000000"] and out["has_snapshot"]
    assert out["event0"]["snapshot_url"].startswith("/api/snapshots/") and out["event0"]["ack"] is None
    assert out["event0"]["received_at"] == "2026-11-18T11:06:40.000Z"
    assert out["acked"]["ack"] == {"by": "ops", "at": "2026-11-18T11:07:10.000Z", "note": "seen"}
    assert out["all"] == (["05", "04", "03"], 6)  # newest first, one page of 3
    assert out["trucks"] == (["02", "01"], 2)
    assert out["acknowledged"] == (["01"], 1)
    assert out["speeding_after"] == (["04"], 1)
    assert [(c["hour"], c["node"], c["direction"], c["class"], c["count"]) for c in out["counts"]] == [
        ("2026-11-18T11:00:00Z", "n1", None, "car", 1),  # no direction measured
        ("2026-11-18T11:00:00Z", "n1", 2, "car", 1),  # a number stays a number; the first class counts
        ("2026-11-18T11:00:00Z", "n1", "in", "car", 1),
        ("2026-11-18T11:00:00Z", "n1", "out", "truck", 1),
        ("2026-11-18T11:00:00Z", "n2", "in", "car", 1),
    ]
    assert out["gaps"] == [
        {"node": "n1", "first_seq": 5, "last_seq": 5, "detected_at": "2026-11-18T11:06:40.000Z"}
    ]
    node = out["nodes"][0]
    assert (node["state"], node["state_since"], node["last_seen"]) == (
        "offline",
        "2026-11-18T11:07:00.000Z",
        "2026-11-18T11:07:00.000Z",
    )
    assert node["cameras"] == [
        {"camera": "gate", "stream_state": "ok", "fps": 5.0, "inference_ms": None, "dropped_frames": None}
    ]
    assert [a["action"] for a in out["audit"]] == ["login", "ack"]
    assert out["dead"][0]["webhook"] == "b" and out["dead"][0]["last_error"] == "HTTP 500"
    assert out["requeued"] and out["queue"] == {"pending": 2}


def test_postgresql_answers_exactly_like_sqlite(tmp_path: Path, postgres_server: Postgres) -> None:
    lite = Store(tmp_path / "c.sqlite", tmp_path / "s1")
    pg = Store(postgres_server.create_database(), tmp_path / "s2", postgres_server.password)
    try:
        assert exercise(pg) == exercise(lite)
    finally:
        lite.close()
        pg.close()


def test_the_store_reconnects_after_the_server_drops_it(postgres_server: Postgres, tmp_path: Path) -> None:
    import psycopg

    store = Store(postgres_server.create_database(), tmp_path / "s", postgres_server.password)
    try:
        store.insert_events([event_row(make_event(1), NOW, NOW)])
        pid = store.conn().execute("SELECT pg_backend_pid()").fetchone()[0]
        killer = Store(store.label, tmp_path / "s", postgres_server.password)
        killer.conn().execute("SELECT pg_terminate_backend(?)", (pid,))
        killer.close()
        assert store.count_events() == 1  # a read retries once on a new connection
        pid = store.conn().execute("SELECT pg_backend_pid()").fetchone()[0]
        killer = Store(store.label, tmp_path / "s", postgres_server.password)
        with pytest.raises(psycopg.OperationalError, match="terminat"), store.tx() as conn:
            killer.conn().execute("SELECT pg_terminate_backend(?)", (pid,))
            conn.execute("SELECT 1")  # inside a transaction nothing is retried: the writer retries it whole
        killer.close()
        assert store.count_events() == 1
    finally:
        store.close()


def test_the_url_needs_the_password_from_a_secret(postgres_server: Postgres, tmp_path: Path) -> None:
    with pytest.raises(StoreRefusedError, match="password"):  # a refusal, not worth waiting for
        Store(postgres_server.create_database(), tmp_path / "s", None)
