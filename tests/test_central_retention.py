"""Retention per kind (issue 14): counts kept long, snapshots short, expired snapshots said so; on a real
store (SQLite, and PostgreSQL in the integration run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Postgres
from test_central_support import make_event

from central.config import validate_config
from central.ingest import event_row
from central.retention import RetentionSettings
from central.store import Store
from central.storeretain import mark_clips_expired
from common.yamlconf import ConfigError

NOW = 1_795_000_000.0
DAY = 86400.0
POLICY = RetentionSettings(default_days=90, per_kind={"line_crossing": 730}, snapshots_days=30)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    else:
        pg: Postgres = request.getfixturevalue("postgres_server")
        s = Store(pg.create_database(), tmp_path / "snaps", pg.password)
    s.migrate()
    yield s
    s.close()


def _put(
    store: Store, seq: int, kind: str, age_days: float, snapshot_age_days: float | None
) -> dict[str, Any]:
    ts = NOW - age_days * DAY
    payload = make_event(seq, kind=kind, ts=ts)
    store.insert_events([event_row(payload, ts, ts + 1)])
    if snapshot_age_days is not None:
        jpeg = f"\xff\xd8 {seq} \xff\xd9".encode("latin-1")
        store.link_snapshots(
            [(payload["event_id"], store.snapshots.put(jpeg), len(jpeg), NOW - snapshot_age_days * DAY)]
        )
    return payload


# (kind, event age in days, snapshot age in days or None, event kept, snapshot kept)
TABLE = [
    ("line_crossing", 800, None, False, False),
    ("line_crossing", 400, None, True, False),
    ("line_crossing", 100, 100, True, False),
    ("loitering", 100, 100, False, False),
    ("loitering", 60, 40, True, False),
    ("loitering", 20, 20, True, True),
    ("suspected_collision", 89, 29, True, True),
]


def test_events_are_kept_per_kind_and_snapshots_by_their_own_age(store: Store) -> None:
    events = [_put(store, i, kind, age, snap) for i, (kind, age, snap, _, _) in enumerate(TABLE, start=1)]
    files = {e["event_id"]: (store.get_event(e["event_id"]) or {}).get("snapshot_url") for e in events}
    deleted_events, deleted_files = store.retain_policy(POLICY.policy(), NOW)
    assert deleted_events == sum(1 for row in TABLE if not row[3])
    assert deleted_files == sum(1 for row in TABLE if row[2] is not None and not row[4])
    for payload, (kind, age, snap, event_kept, snap_kept) in zip(events, TABLE, strict=True):
        got = store.get_event(payload["event_id"])
        assert (got is not None) == event_kept, (kind, age)
        if got is None:
            continue
        assert (got["snapshot_url"] is not None) == snap_kept, (kind, age)
        assert got["snapshot_expired"] == (snap is not None and not snap_kept), (kind, age)
        url = files[payload["event_id"]]
        if url is not None:
            sha = url.rsplit("/", 1)[1].removesuffix(".jpg")
            assert store.snapshots.path_for(sha).exists() == snap_kept
    counts = store.counts(None, None, None, None)
    assert sum(c["count"] for c in counts) == 2  # the year-old counts survive the 90-day default


def test_expired_marks_go_with_their_event_and_clips_can_be_marked(store: Store) -> None:
    kept = _put(store, 1, "loitering", 60, 40)
    store.retain_policy(POLICY.policy(), NOW)
    mark_clips_expired(store, [kept["event_id"]], NOW)
    assert (store.get_event(kept["event_id"]) or {})["snapshot_expired"] is True
    shorter = RetentionSettings(default_days=30).policy()
    assert store.retain_policy(shorter, NOW) == (1, 0)
    assert store.count_events() == 0


def test_the_old_single_age_still_works(store: Store) -> None:
    _put(store, 1, "loitering", 100, 100)
    assert store.retain(max_age_s=90 * DAY, max_snapshot_bytes=10**6, now=NOW) == (1, 1)


@pytest.mark.parametrize(
    ("retention", "error"),
    [
        ({"per_kind": {"no_such_kind": 10}}, "retention.per_kind: .*unknown event kind 'no_such_kind'"),
        ({"per_kind": {"loitering": 0}}, "retention.per_kind.loitering: days must be more than 0"),
        ({"snapshots_days": -1}, "retention.snapshots_days"),
        ({"default_days": 10, "max_age_days": 20}, "not both"),
    ],
)
def test_bad_retention_names_the_field(retention: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        validate_config({"retention": retention})


def test_retention_config_reads_ages_per_kind_and_the_older_name() -> None:
    cfg = validate_config(
        {"retention": {"max_age_days": 60, "per_kind": {"line_crossing": 730}, "clips_days": 7}}
    )
    policy = cfg.retention.policy()
    assert policy.default_s == 60 * DAY and policy.per_kind_s == {"line_crossing": 730 * DAY}
    assert policy.snapshots_s == 60 * DAY and policy.clips_s == 7 * DAY
