"""Ingest with a real Mosquitto: stored within 1 s, idempotence, snapshots, gaps, health, SIGKILL."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Broker, free_port, wait_port
from support import wait_for
from test_central_support import (
    PREFIX,
    central_config,
    dumps,
    event_topic,
    login,
    make_event,
    publish_all,
    publisher,
    running,
    write_config,
)

from central.queries import EventFilter
from central.store import Store

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"


def test_published_event_is_visible_through_the_api_within_one_second(broker: Broker, tmp_path: Path) -> None:
    port = free_port()
    with (
        running(central_config(tmp_path, broker.port), http_port=port),
        login(f"http://127.0.0.1:{port}", "viewer") as api,
        publisher(broker.port) as pub,
    ):
        payload = make_event(1)
        start = time.monotonic()
        publish_all(pub, [(event_topic(payload), dumps(payload))])
        elapsed = wait_for(lambda: api.get(f"/api/events/{payload['event_id']}").status_code == 200, 1.0)
        assert time.monotonic() - start < 1.0, elapsed
        event = api.get(f"/api/events/{payload['event_id']}").json()
        assert event["seq"] == 1 and event["texts"]["vi"] == "Xe ô tô đi vào"
        assert event["ack"] is None and event["snapshot_url"] is None and event["received_at"].endswith("Z")


def test_same_event_twice_is_stored_once(broker: Broker, tmp_path: Path) -> None:
    with running(central_config(tmp_path, broker.port)) as agg, publisher(broker.port) as pub:
        first, second = make_event(1), make_event(2)
        msgs = [(event_topic(first), dumps(first))] * 3 + [(event_topic(second), dumps(second))]
        publish_all(pub, msgs)
        wait_for(lambda: agg.writer.stored_events == 2)
        time.sleep(0.2)
        assert agg.store.count_events() == 2
        assert agg.counters.snapshot()["accepted"]["EventItem"] == 4


@pytest.mark.parametrize("snapshot_first", [True, False])
def test_snapshot_is_linked_whichever_arrives_first(
    broker: Broker, tmp_path: Path, snapshot_first: bool
) -> None:
    sha = hashlib.sha256(JPEG).hexdigest()
    payload = make_event(1)
    snap_topic = f"{PREFIX}/n1/gate/snapshots/{payload['event_id']}"
    payload["snapshot"] = {"topic": snap_topic, "sha256": sha, "bytes": len(JPEG)}
    msgs = [(event_topic(payload), dumps(payload)), (snap_topic, JPEG)]
    with running(central_config(tmp_path, broker.port)) as agg, publisher(broker.port) as pub:
        publish_all(pub, msgs[::-1] if snapshot_first else msgs)
        wait_for(lambda: (agg.store.get_event(payload["event_id"]) or {}).get("snapshot_url") is not None)
        event = agg.store.get_event(payload["event_id"])
        assert event is not None and event["snapshot_url"] == f"/api/snapshots/{sha}.jpg"
        assert (tmp_path / "snapshots" / sha[:2] / f"{sha[2:]}.jpg").read_bytes() == JPEG


def test_sequence_gaps_are_recorded_and_late_events_resolve_them(broker: Broker, tmp_path: Path) -> None:
    events = {seq: make_event(seq) for seq in (1, 2, 5, 6, 9)}
    with running(central_config(tmp_path, broker.port)) as agg, publisher(broker.port) as pub:
        publish_all(pub, [(event_topic(p), dumps(p)) for p in events.values()])
        wait_for(lambda: agg.writer.stored_events == 5)
        assert [(g["first_seq"], g["last_seq"]) for g in agg.store.open_gaps("n1")] == [(3, 4), (7, 8)]
        late = make_event(3)
        publish_all(pub, [(event_topic(late), dumps(late))])
        wait_for(lambda: agg.writer.stored_events == 6)
        assert [(g["first_seq"], g["last_seq"]) for g in agg.store.open_gaps("n1")] == [(4, 4), (7, 8)]


def test_offline_node_and_lost_stream_raise_central_alerts(broker: Broker, tmp_path: Path) -> None:
    cfg = central_config(
        tmp_path, broker.port, health={"offline_alert_after_s": 0.3, "stream_lost_alert_after_s": 0.3}
    )
    stats = {
        "v": 1,
        "node": "n2",
        "ts": "2026-11-28T15:00:00Z",
        "cameras": {
            "gate": {
                "fps": 5.0,
                "inference_ms": 30.0,
                "dropped_frames": 0,
                "stream_state": "lost",
                "tracks": 0,
            }
        },
        "outbox": {"depth": 0, "dropped_events": 0, "dropped_snapshots": 0},
        "cpu_load": 0.5,
        "temperature_c": None,
        "disk_free_mb": 1000.0,
    }
    with running(cfg) as agg, publisher(broker.port) as pub:
        publish_all(pub, [(f"{PREFIX}/n2/stats", dumps(stats))])
        wait_for(lambda: agg.store.list_events(_kind("camera_stream_lost"), 10, 0)[1] == 1, 3.0)
        status = {"v": 1, "node": "n2", "state": "offline", "ts": "2026-11-28T15:00:01Z"}
        publish_all(pub, [(f"{PREFIX}/n2/status", dumps(status))])
        wait_for(lambda: agg.store.list_events(_kind("node_offline"), 10, 0)[1] == 1, 3.0)
        time.sleep(0.5)  # each condition alerts once until it clears
        assert agg.store.list_events(_kind("node_offline"), 10, 0)[1] == 1
        alert = agg.store.list_events(_kind("node_offline"), 10, 0)[0][0]
        assert alert["node"] == "n2" and alert["texts"]["en"].startswith("Node n2 offline")
        node = agg.store.node("n2")
        assert node is not None and node["state"] == "offline"
        assert node["cameras"][0]["stream_state"] == "lost" and node["cameras"][0]["fps"] == 5.0


def _kind(kind: str) -> EventFilter:
    return EventFilter(kind=kind)


@pytest.mark.slow
def test_sigkilled_aggregator_loses_nothing_published_while_down(broker: Broker, tmp_path: Path) -> None:
    """Persistent session: QoS 1 messages published while the process is dead arrive after the restart.

    An operator logged in before the crash is still logged in after it (sessions live in the store).
    """
    port = free_port()
    cfg = central_config(tmp_path, broker.port, http_port=port)
    path = write_config(tmp_path / "central.yaml", cfg)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def start() -> subprocess.Popen[bytes]:
        with (tmp_path / "central.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "central", "run", str(path)], env=env, stdout=log, stderr=log
            )
        try:
            wait_port(port, 40)
        except TimeoutError:  # never leave a running child behind a failed start (its log says why)
            proc.kill()
            proc.wait(10)
            raise
        time.sleep(0.3)  # the HTTP server starts after MQTT: give the subscription a moment
        return proc

    def stored_ids() -> set[str]:
        store = Store(cfg.store.sqlite_path, Path(cfg.store.snapshots_dir))
        try:
            return set(store.event_ids())
        finally:
            store.close()

    before = [make_event(i) for i in range(1, 51)]
    during = [make_event(i) for i in range(51, 551)]
    with publisher(broker.port) as pub:
        proc = start()
        try:
            publish_all(pub, [(event_topic(p), dumps(p)) for p in before])
            wait_for(lambda: len(stored_ids()) == 50, 10)
            with login(f"http://127.0.0.1:{port}", "op") as api:
                assert api.get("/api/me").json()["username"] == "op"
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                publish_all(pub, [(event_topic(p), dumps(p)) for p in during])
                proc = start()
                wait_for(lambda: len(stored_ids()) == 550, 20)
                assert stored_ids() == {p["event_id"] for p in before + during}
                me = api.get("/api/me")
                assert me.status_code == 200 and me.json()["role"] == "operator"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_session_survives_a_restart_with_either_protocol(
    broker: Broker, tmp_path: Path, protocol: str
) -> None:
    cfg = central_config(
        tmp_path, broker.port, mqtt={"protocol": protocol, "client_id": f"central-restart-{protocol}"}
    )
    first, while_down = make_event(1), [make_event(i) for i in range(2, 12)]
    with publisher(broker.port) as pub:
        with running(cfg) as agg:
            publish_all(pub, [(event_topic(first), dumps(first))])
            wait_for(lambda: agg.writer.stored_events == 1)
        publish_all(pub, [(event_topic(p), dumps(p)) for p in while_down])
        with running(cfg) as agg:
            wait_for(lambda: agg.store.count_events() == 11)
            assert set(agg.store.event_ids()) == {p["event_id"] for p in [first, *while_down]}


def test_shared_subscription_splits_events_between_aggregators(broker: Broker, tmp_path: Path) -> None:
    configs = [
        central_config(
            tmp_path / name, broker.port, mqtt={"client_id": f"central-{name}", "shared_group": "station"}
        )
        for name in ("a", "b")
    ]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    events = [make_event(i) for i in range(1, 201)]
    with running(configs[0]) as a, running(configs[1]) as b, publisher(broker.port) as pub:
        publish_all(pub, [(event_topic(p), dumps(p)) for p in events])
        wait_for(lambda: a.writer.stored_events + b.writer.stored_events == 200, 10)
        ids_a, ids_b = set(a.store.event_ids()), set(b.store.event_ids())
        assert not ids_a & ids_b and ids_a | ids_b == {p["event_id"] for p in events}
        assert ids_a and ids_b  # both took a share
