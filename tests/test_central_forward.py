"""Forwarding: rule matching, throttling, the MQTT alert topic, signed webhooks, retries, dead letters."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from conftest import Broker, Postgres, free_port, make_broker
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
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
)

from central.config import ForwardingSettings, ForwardRule, TimeWindow, Webhook
from central.forward import Forwarder, WebhookWorker, in_window, rule_matches, sign
from central.forwardstate import deadletters
from central.ingest import PublishResult
from central.store import Store

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SECRET = "webhook-secret-for-tests"


class Receiver:
    """A real HTTP server on loopback that answers with the next scripted status and records requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("start", "end", "hhmm", "inside"),
    [
        ("22:00", "05:00", "23:30", True),
        ("22:00", "05:00", "04:59", True),
        ("22:00", "05:00", "05:00", False),
        ("22:00", "05:00", "12:00", False),
        ("08:00", "17:00", "08:00", True),
        ("08:00", "17:00", "17:00", False),
    ],
)
def test_time_windows_wrap_midnight(start: str, end: str, hhmm: str, inside: bool) -> None:
    window = TimeWindow.model_validate({"from": start, "to": end})
    h, m = map(int, hhmm.split(":"))
    assert in_window(window, datetime(2026, 11, 28, h, m, tzinfo=TZ)) is inside


def test_rules_select_by_kind_camera_class_phase_and_time() -> None:
    rule = ForwardRule.model_validate(
        {
            "name": "r",
            "kinds": ["intrusion"],
            "cameras": ["gate", "n2/yard"],
            "classes": ["person"],
            "phases": ["start"],
            "time_of_day": {"from": "22:00", "to": "05:00"},
        }
    )
    night = "2026-11-28T16:00:00.000Z"  # 23:00 in Hanoi
    base = make_event(1, kind="intrusion", phase="start", classes=["person", "car"], ts=0.0)
    base["ts"] = night
    assert rule_matches(rule, base, TZ)
    assert rule_matches(rule, {**base, "node": "n2", "camera": "yard"}, TZ)
    assert not rule_matches(rule, {**base, "camera": "yard"}, TZ)  # yard only on n2
    assert not rule_matches(rule, {**base, "kind": "loitering"}, TZ)
    assert not rule_matches(rule, {**base, "classes": ["car"]}, TZ)
    assert not rule_matches(rule, {**base, "phase": "end"}, TZ)
    assert not rule_matches(rule, {**base, "ts": "2026-11-28T05:00:00.000Z"}, TZ)  # noon in Hanoi


def test_throttle_is_per_rule_camera_and_zone(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    sent: list[str] = []

    def record(topic: str, body: bytes) -> PublishResult:
        sent.append(topic)
        return "sent"

    settings = ForwardingSettings(rules=[ForwardRule(name="crowd", kinds=["crowding"], throttle_s=300)])
    fwd = Forwarder(settings, store, PREFIX, "Asia/Ho_Chi_Minh", record)
    zone_a = make_event(1, kind="crowding", phase="start", rule="zone_a")
    zone_b = make_event(2, kind="crowding", phase="start", rule="zone_b")
    assert fwd.consider(zone_a, now=1000.0) == 1
    assert fwd.consider({**zone_a, "event_id": "x"}, now=1100.0) == 0  # same zone within 5 minutes
    assert fwd.consider(zone_b, now=1100.0) == 1  # another zone is not throttled
    assert fwd.consider({**zone_a, "camera": "market"}, now=1100.0) == 1  # nor another camera
    assert fwd.consider(zone_a, now=1300.1) == 1  # the window has passed
    gate, market = f"{PREFIX}/alerts/n1/gate/crowding", f"{PREFIX}/alerts/n1/market/crowding"
    assert sent == [gate, gate, market, gate]
    assert fwd.throttled == 1
    store.close()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def test_throttle_windows_survive_a_restart(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if engine == "sqlite":
        target: Path | str = tmp_path / "c.sqlite"
        password = None
    else:
        server: Postgres = request.getfixturevalue("postgres_server")
        target, password = server.create_database(), server.password
    sent: list[str] = []

    def record(topic: str, body: bytes) -> PublishResult:
        sent.append(topic)
        return "sent"

    settings = ForwardingSettings(rules=[ForwardRule(name="crowd", kinds=["crowding"], throttle_s=300)])
    crowd = make_event(1, kind="crowding", phase="start", rule="zone_a")
    store = Store(target, tmp_path / "s", password)
    assert Forwarder(settings, store, PREFIX, "Asia/Ho_Chi_Minh", record).consider(crowd, now=1000.0) == 1
    store.close()
    store = Store(target, tmp_path / "s", password)  # the aggregator restarted
    fwd = Forwarder(settings, store, PREFIX, "Asia/Ho_Chi_Minh", record)
    assert fwd.consider({**crowd, "event_id": "x"}, now=1200.0) == 0  # still inside the window
    assert fwd.consider({**crowd, "event_id": "y"}, now=1300.5) == 1
    store.close()
    store = Store(target, tmp_path / "s", password)
    fwd = Forwarder(settings, store, PREFIX, "Asia/Ho_Chi_Minh", record)
    assert fwd.consider({**crowd, "event_id": "z"}, now=1500.0) == 0  # the new window was saved too
    assert len(sent) == 2 and fwd.throttled == 1
    store.close()


def test_webhook_is_signed_retried_with_backoff_then_dead_lettered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RW_HOOK", SECRET)
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    with Receiver([500, 503, 200, 500, 500]) as rx:
        hook = Webhook.model_validate(
            {"url": rx.url, "secret": {"env": "RW_HOOK"}, "max_attempts": 2, "backoff_s": 10}
        )
        settings = ForwardingSettings(
            webhooks={"police": hook}, rules=[ForwardRule(name="all", mqtt=False, webhooks=["police"])]
        )
        fwd = Forwarder(settings, store, PREFIX, "Asia/Ho_Chi_Minh", lambda t, b: "sent")
        worker = WebhookWorker(store, settings.webhooks)
        first, second = make_event(1), make_event(2)
        fwd.consider(first, now=1000.0)
        assert worker.deliver_due(1000.0) == 1  # 500: retry in 10 s
        assert worker.deliver_due(1005.0) == 0  # not due yet
        assert worker.deliver_due(1e12) == 1  # 503 on attempt 2 of 2: dead letter
        headers, body = rx.requests[0]
        assert (
            headers["X-Roadwatch-Signature"]
            == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        )
        assert headers["X-Roadwatch-Signature"] == sign(SECRET, body)
        alert = json.loads(body)
        assert (
            alert["rule"] == "all"
            and alert["event"]["event_id"] == first["event_id"]
            and alert["texts"]["en"]
        )
        items, total = deadletters(store)
        assert (
            total == 1 and items[0]["event_id"] == first["event_id"] and items[0]["last_error"] == "HTTP 503"
        )
        assert items[0]["attempts"] == 2
        fwd.consider(second, now=2000.0)
        assert worker.deliver_due(1e12) == 1  # 200 at once
        assert deadletters(store)[1] == 1
        assert len(rx.requests) == 3
    store.close()


@pytest.mark.integration
def test_forwarding_end_to_end_mqtt_alert_webhook_and_requeue(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RW_HOOK", SECRET)
    port = free_port()
    alerts: list[tuple[str, dict[str, Any]]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    listener.on_message = lambda c, u, m: alerts.append((m.topic, json.loads(m.payload)))
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe(f"{PREFIX}/alerts/#", qos=1)
    listener.loop_start()
    with Receiver([500]) as rx:
        cfg = central_config(
            tmp_path,
            broker.port,
            forwarding={
                "webhooks": {
                    "police": {
                        "url": rx.url,
                        "secret": {"env": "RW_HOOK"},
                        "max_attempts": 1,
                        "backoff_s": 0.1,
                    }
                },
                "rules": [{"name": "intrusions", "kinds": ["intrusion"], "webhooks": ["police"]}],
            },
        )
        with (
            running(cfg, http_port=port) as agg,
            publisher(broker.port) as pub,
            login(f"http://127.0.0.1:{port}", "admin") as api,
        ):
            crossing, intrusion = make_event(1), make_event(2, kind="intrusion", phase="start")
            publish_all(
                pub, [(event_topic(crossing), dumps(crossing)), (event_topic(intrusion), dumps(intrusion))]
            )
            wait_for(lambda: len(alerts) == 1 and len(rx.requests) == 1, 5)
            topic, alert = alerts[0]
            assert (
                topic == f"{PREFIX}/alerts/n1/gate/intrusion"
                and alert["event"]["event_id"] == intrusion["event_id"]
            )
            assert alert["texts"] == intrusion["texts"] and alert["v"] == 1
            wait_for(lambda: api.get("/api/webhooks/deadletters").json()["total"] == 1, 5)
            dead = api.get("/api/webhooks/deadletters").json()["items"][0]
            assert dead["event_id"] == intrusion["event_id"]
            with login(f"http://127.0.0.1:{port}", "op") as op:
                assert op.get("/api/webhooks/deadletters").status_code == 403
            assert api.post(f"/api/webhooks/deadletters/{dead['id']}/requeue").status_code == 200
            wait_for(lambda: len(rx.requests) == 2, 5)  # the receiver answers 200 now
            wait_for(lambda: api.get("/api/webhooks/deadletters").json()["total"] == 0, 5)
            assert agg.status()["webhooks"] == {"delivered": 1}
    listener.disconnect()
    listener.loop_stop()


@pytest.mark.integration
def test_an_alert_raised_while_the_broker_is_down_reaches_police_phones_after_it(tmp_path: Path) -> None:
    """The broker restarts between an event and its alert: the alert waits in the aggregator's MQTT client
    and reaches a phone with a persistent session once both are back."""
    saved = tmp_path / "mosquitto-db"
    saved.mkdir()
    as_root = "user root\n" if os.geteuid() == 0 else ""  # else it drops to a user that cannot write here
    broker = make_broker(tmp_path, f"persistence true\npersistence_location {saved}/\n{as_root}")
    broker.start()
    alerts: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()
    phone = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="police-phone-1", protocol=mqtt.MQTTv5)
    phone.on_message = lambda c, u, m: alerts.append((m.topic, json.loads(m.payload)))
    phone.on_subscribe = lambda *_: subscribed.set()
    phone.reconnect_delay_set(1, 2)
    session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
    session.SessionExpiryInterval = 3600
    phone.connect("127.0.0.1", broker.port, clean_start=False, properties=session)
    phone.subscribe(f"{PREFIX}/alerts/#", qos=1)
    phone.loop_start()
    cfg = central_config(
        tmp_path, broker.port, forwarding={"rules": [{"name": "intrusions", "kinds": ["intrusion"]}]}
    )
    try:
        assert subscribed.wait(5)
        with running(cfg) as agg:
            broker.stop()
            wait_for(lambda: not agg.ingest.connected.is_set(), 5)
            intrusion = make_event(1, kind="intrusion", phase="start")
            assert agg.forwarder.consider(intrusion) == 1
            assert agg.status()["alerts_queued_offline"] == 1 and agg.status()["alerts_published"] == 1
            broker.start()
            wait_for(lambda: len(alerts) == 1, 20)
            assert alerts[0][0] == f"{PREFIX}/alerts/n1/gate/intrusion"
            assert alerts[0][1]["event"]["event_id"] == intrusion["event_id"]
    finally:
        phone.disconnect()
        phone.loop_stop()
        broker.stop()
