"""`copy-store`: a whole store moves from SQLite to a real PostgreSQL and back with every row intact,
ids kept and identity counters moved on; a non-empty target, a missing source or the same store twice
are refused with a clear error and nothing written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Postgres
from test_central_config import _cli
from test_central_support import make_event

from central.auth import hash_token
from central.config import ForwardingSettings, ForwardRule
from central.copystore import TABLES, CopyError, copy_store
from central.forward import Forwarder
from central.forwardstate import enqueue_webhooks
from central.ingest import event_row
from central.sessions import SessionTable
from central.store import Store

NOW = 1_795_000_000.0


def _fill(store: Store) -> str:
    """Something in every table, through the store's own write paths; returns the acknowledged event."""
    events = [make_event(i, ts=NOW + i) for i in range(1, 26)]
    store.insert_events([event_row(e, NOW + i, NOW + i + 0.25) for i, e in enumerate(events)])
    sha = store.snapshots.put(b"\xff\xd8 a real jpeg would be here \xff\xd9")
    store.link_snapshots([(events[0]["event_id"], sha, 31, NOW), (events[1]["event_id"], sha, 31, NOW)])
    store.acknowledge(events[2]["event_id"], "op", "xe đã được kéo đi", NOW + 60, "10.0.0.7")
    store.audit("admin", "login", None, None, "10.0.0.8")
    store.track_sequences([("n1", 1, NOW), ("n1", 5, NOW + 4)], NOW)  # a gap 2..4
    store.upsert_node("n1", "online", NOW, {"cameras": {"gate": {"fps": 4.5}}})
    enqueue_webhooks(
        store, ["police", "village"], rule="crowd", event_id=events[3]["event_id"], body="{}", now=NOW
    )
    SessionTable(store).save(hash_token("a-session-token"), "op", NOW, NOW + 3600)
    settings = ForwardingSettings(rules=[ForwardRule(name="crowd", kinds=["crowding"], throttle_s=300)])
    Forwarder(settings, store, "roadwatch/v1", "Asia/Ho_Chi_Minh", lambda _t, _b: "sent").consider(
        make_event(99, kind="crowding", phase="start"), now=NOW
    )
    return str(events[2]["event_id"])


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, with the values both engines return alike."""
    out = {}
    for table in TABLES:
        rows = store.conn().execute(f"SELECT {', '.join(table.columns)} FROM {table.name}").fetchall()
        out[table.name] = sorted(tuple(r) for r in rows)
    return out


@pytest.fixture
def pg_store(postgres_server: Postgres, tmp_path: Path) -> Store:
    return Store(postgres_server.create_database(), tmp_path / "pg-snaps", postgres_server.password)


def test_every_table_of_the_schema_is_copied(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    try:
        conn = store.conn()
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert names - {"schema_version"} == {t.name for t in TABLES}
        for table in TABLES:
            columns = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table.name})"))
            assert columns == table.columns, table.name
    finally:
        store.close()


def test_sqlite_to_postgresql_and_back_keeps_every_row(pg_store: Store, tmp_path: Path) -> None:
    source = Store(tmp_path / "old.sqlite", tmp_path / "snaps")
    back = Store(tmp_path / "back.sqlite", tmp_path / "back-snaps")
    try:
        acked_id = _fill(source)
        progress: list[tuple[str, int]] = []
        result = copy_store(source, pg_store, batch=7, progress=lambda t, n: progress.append((t, n)))
        assert (
            result.rows["events"] == 25 and result.rows["webhook_queue"] == 2 and result.snapshot_files == 1
        )
        assert [n for t, n in progress if t == "events"] == [7, 14, 21, 25]  # paged, not read whole
        assert _dump(pg_store) == _dump(source)
        sha = pg_store.conn().execute("SELECT sha256 FROM snapshot_links").fetchone()[0]
        assert pg_store.snapshots.path_for(sha).read_bytes() == source.snapshots.path_for(sha).read_bytes()
        acked = pg_store.get_event(acked_id)
        assert (
            acked is not None and acked["ack"]["by"] == "op" and acked["ack"]["note"] == "xe đã được kéo đi"
        )

        # identity counters continue after the copied ids: new rows do not collide
        pg_store.audit("admin", "logout", None, None, None)
        ids = [r[0] for r in pg_store.conn().execute("SELECT id FROM audit ORDER BY id")]
        assert len(ids) == len(set(ids)) == len(_dump(source)["audit"]) + 1

        assert copy_store(pg_store, back).rows == {**result.rows, "audit": result.rows["audit"] + 1}
        assert _dump(back) == _dump(pg_store)
    finally:
        source.close()
        back.close()
        pg_store.close()


def test_a_target_that_holds_events_is_refused_and_left_alone(tmp_path: Path) -> None:
    source, target = (
        Store(tmp_path / "a.sqlite", tmp_path / "s"),
        Store(tmp_path / "b.sqlite", tmp_path / "t"),
    )
    try:
        _fill(source)
        target.insert_events([event_row(make_event(500), NOW, NOW)])
        before = _dump(target)
        with pytest.raises(CopyError, match="already holds 1 events"):
            copy_store(source, target)
        assert _dump(target) == before
    finally:
        source.close()
        target.close()


def _config(path: Path, store: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"store": store}), encoding="utf-8")
    return path


def test_cli_copies_into_postgresql_and_refuses_mistakes(postgres_server: Postgres, tmp_path: Path) -> None:
    old = {"url": f"sqlite:///{tmp_path / 'old.sqlite'}", "snapshots_dir": str(tmp_path / "snaps")}
    source = Store(tmp_path / "old.sqlite", tmp_path / "snaps")
    _fill(source)
    source.close()
    old_cfg = _config(tmp_path / "old.yaml", old)
    new_cfg = _config(
        tmp_path / "new.yaml",
        {
            "url": postgres_server.create_database(),
            "password": {"env": "RW_TEST_DB_PW"},
            "snapshots_dir": old["snapshots_dir"],
        },
    )
    env = {**os.environ, "RW_TEST_DB_PW": postgres_server.password}

    done = _cli("copy-store", str(old_cfg), str(new_cfg), env=env)
    assert done.returncode == 0, done.stderr
    assert (
        "events                   25 rows" in done.stdout
        and "snapshot files            0 copied" in done.stdout
    )

    again = _cli("copy-store", str(old_cfg), str(new_cfg), env=env)
    assert again.returncode == 2 and "already holds 25 events" in again.stderr

    missing = _config(tmp_path / "typo.yaml", {"url": f"sqlite:///{tmp_path / 'olt.sqlite'}"})
    done = _cli("copy-store", str(missing), str(new_cfg), env=env)
    assert done.returncode == 2 and "store.url: no database at" in done.stderr
    assert not (tmp_path / "olt.sqlite").exists()  # a typo never creates an empty source

    done = _cli("copy-store", str(old_cfg), str(old_cfg), env=env)
    assert done.returncode == 2 and "name the same store" in done.stderr

    bad = _config(tmp_path / "bad.yaml", {"url": "mysql://db/roadwatch"})
    done = _cli("copy-store", str(old_cfg), str(bad), env=env)
    assert done.returncode == 2 and "bad.yaml: store.url:" in done.stderr
