"""Snapshots are bound to their event (node and sha256); orphans have their own per-node quota."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Broker, free_port
from support import wait_for
from test_central_support import (
    central_config,
    dumps,
    event_topic,
    login,
    make_event,
    publish_all,
    publisher,
    running,
)

from central.binding import SnapshotBinder
from central.ingest import IngestCounters, SnapshotItem, event_row
from central.store import Store

NOW = time.time()


def jpeg(tag: bytes, size: int = 200) -> bytes:
    return b"\xff\xd8" + tag + os.urandom(size)


def with_snapshot(event: dict[str, Any], data: bytes) -> dict[str, Any]:
    topic = f"roadwatch/v1/{event['node']}/{event['camera']}/snapshots/{event['event_id']}"
    event["snapshot"] = {"topic": topic, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return event


def snap_topic(node: str, event_id: str) -> str:
    return f"roadwatch/v1/{node}/gate/snapshots/{event_id}"


def linked_sha(store: Store, event_id: str) -> str | None:
    row = store.conn().execute("SELECT sha256 FROM snapshot_links WHERE event_id=?", (event_id,)).fetchone()
    return None if row is None else str(row[0])


GOOD, OTHER = jpeg(b"good"), jpeg(b"other")
# (case, event node, declared bytes or None, snapshot node, snapshot bytes, event first?, expected)
CASES = [
    ("bound", "n2", GOOD, "n2", GOOD, True, None),
    ("bound-orphan-first", "n2", GOOD, "n2", GOOD, False, None),
    ("other-node", "n2", GOOD, "n1", GOOD, True, "snapshot_wrong_node"),
    ("other-node-orphan", "n2", GOOD, "n1", GOOD, False, "snapshot_wrong_node"),
    ("other-bytes", "n2", GOOD, "n2", OTHER, True, "snapshot_sha_mismatch"),
    ("other-bytes-orphan", "n2", GOOD, "n2", OTHER, False, "snapshot_sha_mismatch"),
    ("undeclared", "n2", None, "n2", GOOD, True, "snapshot_not_declared"),
]


@pytest.mark.parametrize(("event_node", "declared", "snap_node", "data", "event_first", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_binding_table(
    tmp_path: Path,
    event_node: str,
    declared: bytes | None,
    snap_node: str,
    data: bytes,
    event_first: bool,
    reason: str | None,
) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    counters = IngestCounters()
    binder = SnapshotBinder(store, counters)
    event = make_event(1, node=event_node)
    if declared is not None:
        with_snapshot(event, declared)
    row = event_row(event, NOW, NOW)
    snap = SnapshotItem(event["event_id"], data, NOW, None, snap_node)
    steps = [([], [row]), ([snap], [])] if event_first else [([snap], []), ([], [row])]
    for snaps, events in steps:
        store.insert_events(events)
        store.link_snapshots(binder.bind(snaps, events, NOW))
        binder.settle()
    expected = None if reason else hashlib.sha256(data).hexdigest()
    assert linked_sha(store, event["event_id"]) == expected
    assert counters.snapshot()["rejected"] == ({reason: 1} if reason else {})
    assert store.orphan_bytes(snap_node) == 0  # claimed or refused: no orphan left behind
    files = {p.name for p in (tmp_path / "s").rglob("*.jpg")}
    assert files == ({hashlib.sha256(data).hexdigest()[2:] + ".jpg"} if not reason else set())
    store.close()


def test_a_forged_orphan_does_not_displace_the_genuine_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    binder = SnapshotBinder(store)
    event = with_snapshot(make_event(1, node="n2"), GOOD)
    forged = SnapshotItem(event["event_id"], OTHER, NOW, None, "n1")
    genuine = SnapshotItem(event["event_id"], GOOD, NOW, None, "n2")
    for snaps in ([genuine], [forged]):  # the forgery comes last
        binder.bind(snaps, [], NOW)
    row = event_row(event, NOW, NOW)
    store.insert_events([row])
    store.link_snapshots(binder.bind([], [row], NOW))
    binder.settle()
    assert linked_sha(store, event["event_id"]) == hashlib.sha256(GOOD).hexdigest()
    assert binder.counters.snapshot()["rejected"] == {"snapshot_wrong_node": 1}
    store.close()


def test_orphan_quota_is_per_node_and_enforced_on_arrival(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    binder = SnapshotBinder(store, orphan_quota_bytes=10_000, orphan_ttl_s=60)
    flood = [SnapshotItem(make_event(i)["event_id"], jpeg(b"f", 1000), NOW, None, "n1") for i in range(50)]
    binder.bind(flood, [], NOW)
    assert 9_000 <= store.orphan_bytes("n1") <= 10_000
    assert binder.counters.snapshot()["rejected"]["snapshot_orphan_quota"] >= 40
    honest = with_snapshot(make_event(1, node="n2"), GOOD)
    binder.bind([SnapshotItem(honest["event_id"], GOOD, NOW, None, "n2")], [], NOW)  # n2 is not blocked
    assert store.orphan_bytes("n2") == len(GOOD)
    assert binder.expire(NOW + 61) == 10  # 9 of n1, 1 of n2: orphans whose event never came go, files too
    assert store.orphan_bytes("n1") == 0 and not list((tmp_path / "s").rglob("*.jpg"))
    store.close()


@pytest.mark.integration
def test_a_node_cannot_replace_another_nodes_snapshot_nor_flood_out_real_ones(
    broker: Broker, tmp_path: Path
) -> None:
    http = free_port()
    cfg = central_config(tmp_path, broker.port, retention={"max_snapshot_mb": 1, "max_orphan_snapshot_mb": 1})
    datas = [jpeg(b"n2-%d" % i, 20_000) for i in range(1, 6)]
    events = [with_snapshot(make_event(i, node="n2"), d) for i, d in enumerate(datas, 1)]
    originals = {e["event_id"]: e["snapshot"]["sha256"] for e in events}
    with running(cfg, http_port=http) as agg, publisher(broker.port) as pub:
        messages = []
        for e, data in zip(events, datas, strict=True):  # the JPEG first, as nodes publish
            messages += [(snap_topic("n2", e["event_id"]), data), (event_topic(e), dumps(e))]
        publish_all(pub, messages)
        wait_for(lambda: all(linked_sha(agg.store, i) for i in originals), 10)
        # n1 publishes its own JPEG under its prefix for n2's event ids, and floods 3 MiB of orphans
        forged = [(snap_topic("n1", i), jpeg(b"forged", 20_000)) for i in originals]
        flood = [(snap_topic("n1", make_event(0)["event_id"]), jpeg(b"flood", 100_000)) for _ in range(30)]
        publish_all(pub, forged + flood)
        wait_for(lambda: agg.counters.snapshot()["rejected"].get("snapshot_orphan_quota", 0) >= 19, 10)
        agg._retain(time.time())
        assert {i: linked_sha(agg.store, i) for i in originals} == originals
        rejected = agg.counters.snapshot()["rejected"]
        assert rejected["snapshot_wrong_node"] == 5
        assert agg.store.orphan_bytes("n1") <= 1024 * 1024
        metrics = httpx.get(f"http://127.0.0.1:{agg.metrics.port}/metrics").text if agg.metrics else ""
        assert 'reason="snapshot_wrong_node"} 5' in metrics
        with login(f"http://127.0.0.1:{http}", "viewer") as api:
            for event_id, sha in originals.items():
                body = api.get(f"/api/snapshots/{sha}.jpg")
                assert body.status_code == 200 and hashlib.sha256(body.content).hexdigest() == sha
                assert (
                    api.get(f"/api/events/{event_id}").json()["snapshot_url"] == f"/api/snapshots/{sha}.jpg"
                )
