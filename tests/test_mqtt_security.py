"""Broker security with the shipped configs/mosquitto/acl: passwords, per-node prefixes, last will, TLS."""

from __future__ import annotations

import getpass
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from conftest import Broker, free_port, make_broker, make_secure_broker, require
from mqtt_node_proc import Receiver
from paho.mqtt.enums import CallbackAPIVersion
from support import wait_for

from common.settings import SecretRef, TlsSettings
from contract.commands import Command
from contract.schemas import load_schema
from edge.config import NodeMqttSettings as MqttSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.publisher import OutboxSink, Publisher

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
ACL = ROOT / "configs" / "mosquitto" / "acl"
USERS = {"n1": "pw-n1", "n2": "pw-n2", "aggregator": "pw-agg"}


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": kind}


@pytest.fixture
def secure_broker(tmp_path: Path) -> Any:
    broker = make_secure_broker(tmp_path, USERS, "log_type information\n")
    broker.start()
    yield broker
    broker.stop()


def node_settings(port: int, user: str, env: str, **kw: Any) -> MqttSettings:
    return MqttSettings(
        port=port,
        username=user,
        password=SecretRef(env=env),
        reconnect_min_s=1,
        reconnect_max_s=2,
        keepalive_s=5,
        **kw,
    )


def aggregator(port: int) -> Receiver:
    rx = Receiver(port, username="aggregator", password=USERS["aggregator"])
    assert rx.subscribed.wait(5)
    return rx


def refused_connects(broker: Broker) -> tuple[int, int]:
    """(TCP connections, CONNECTs refused) seen by the broker; one connection is the fixture's port probe."""
    log = broker.log.read_text(encoding="utf-8", errors="replace")
    return log.count("New connection from"), log.count("not authorised")


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_wrong_password_fails_clearly_once_without_retry_storm(
    secure_broker: Broker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
) -> None:
    monkeypatch.setenv("RW_TEST_PW", "wrong-password")
    outbox = Outbox(tmp_path / "o.sqlite")
    publisher = Publisher(
        "n1", node_settings(secure_broker.port, "n1", "RW_TEST_PW", protocol=protocol), outbox
    )
    caplog.set_level(logging.INFO, logger="edge.transport.publisher")
    publisher.start()
    try:
        assert wait_for(lambda: publisher.auth_failed, 5)
        time.sleep(4)  # the reconnect backoff would have retried 2-3 times by now
        assert not publisher.connected
        assert refused_connects(secure_broker) == (2, 1)
    finally:
        publisher.stop(1)
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "edge.transport.publisher"
    ]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "refused" in message and "password" in message
    assert "Bad user name or password" in message or "Not authorized" in message


def test_shipped_acl_lets_only_the_aggregator_command_a_node(
    secure_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RW_TEST_PW", USERS["n1"])
    received: queue.SimpleQueue[Command] = queue.SimpleQueue()
    publisher = Publisher(
        "n1",
        node_settings(secure_broker.port, "n1", "RW_TEST_PW"),
        Outbox(tmp_path / "o.sqlite"),
        on_command=received.put,
        cameras=frozenset({"gate"}),
    )
    publisher.start()
    clients: list[mqtt.Client] = []

    def client(user: str) -> tuple[mqtt.Client, dict[int, int], list[str]]:
        acks: dict[int, int] = {}
        seen: list[str] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{user}", protocol=mqtt.MQTTv5)
        c.username_pw_set(user, USERS[user])
        c.on_publish = lambda _c, _u, mid, reason, _p: acks.__setitem__(mid, reason.value)
        c.on_message = lambda _c, _u, msg: seen.append(msg.topic)
        c.connect("127.0.0.1", secure_broker.port)
        c.loop_start()
        clients.append(c)
        return c, acks, seen

    topic = "roadwatch/v1/n1/gate/commands/take_reference"
    try:
        assert wait_for(lambda: publisher.connected, 5)
        snoop, snoop_acks, snooped = client("n2")
        snoop.subscribe("roadwatch/v1/#", qos=1)
        time.sleep(0.5)  # both subscriptions are in place
        forged = snoop.publish(topic, command_payload_for_tests("n2"), qos=1)
        assert wait_for(lambda: forged.mid in snoop_acks, 5) and snoop_acks[forged.mid] == 0x87
        station, _, _ = client("aggregator")
        station.publish(topic, command_payload_for_tests("admin"), qos=1).wait_for_publish(5)
        command = received.get(timeout=5)
        assert (command.camera, command.by) == ("gate", "admin")
        time.sleep(0.3)
        assert received.empty()  # the forged command never reached the node
        assert not [t for t in snooped if "/commands/" in t]  # and n2 cannot read n1's commands
        # clips (contract/clips.py): a node publishes its own clip topics, never another node's
        clip_topic = "roadwatch/v1/n1/gate/clips/0b8e6c7a-1f2d-4e5a-9b3c-7d6e5f4a3b2c/0"
        forged_clip = snoop.publish(clip_topic, b"not n2's", qos=1)
        own, own_acks, _ = client("n1")
        own_clip = own.publish(clip_topic, b"n1's chunk", qos=1)
        assert wait_for(lambda: forged_clip.mid in snoop_acks and own_clip.mid in own_acks, 5)
        assert snoop_acks[forged_clip.mid] == 0x87 and own_acks[own_clip.mid] in (0, 0x10)
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        publisher.stop(2)


def command_payload_for_tests(by: str) -> bytes:
    body = {
        "v": 1,
        "command_id": f"cmd-{by}",
        "command": "take_reference",
        "issued_at": "2026-11-28T15:00:00.000Z",
        "by": by,
    }
    return json.dumps(body).encode()


def test_missing_password_source_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RW_TEST_PW", raising=False)
    publisher = Publisher("n1", node_settings(free_port(), "n1", "RW_TEST_PW"), Outbox(tmp_path / "o.sqlite"))
    with pytest.raises(ValueError, match="RW_TEST_PW"):
        publisher.start()


def test_shipped_acl_lets_a_node_publish_only_under_its_own_prefix(
    secure_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = aggregator(secure_broker.port)
    # The real publisher works under the ACL: events, snapshots and status all arrive.
    monkeypatch.setenv("RW_TEST_PW", USERS["n1"])
    outbox = Outbox(tmp_path / "o.sqlite")
    publisher = Publisher("n1", node_settings(secure_broker.port, "n1", "RW_TEST_PW"), outbox)
    publisher.start()
    factory = EventFactory("n1", "gate", "UTC", texts=_texts)
    sink = OutboxSink(outbox, publisher)
    for i in range(5):
        sink.put(factory.make("intrusion", "yard", time.time(), track_ids=(i,)), b"jpeg-%d" % i)
    assert rx.wait_for(lambda: len(rx.event_ids()) == 5, 10)
    assert rx.wait_for(lambda: sum("/snapshots/" in m.topic for m in rx.snapshot()) == 5, 5)
    assert rx.status("n1")[0] == "online"
    publisher.stop(5)

    # A raw client logged in as n1 forges an event under n2's prefix, then publishes a legit one.
    acks: dict[int, int] = {}
    acked = threading.Event()

    def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        acks[mid] = reason.value
        if len(acks) == 2:
            acked.set()

    rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rogue-n1", protocol=mqtt.MQTTv5)
    rogue.username_pw_set("n1", USERS["n1"])
    rogue.on_publish = on_publish
    rogue.connect("127.0.0.1", secure_broker.port)
    rogue.loop_start()
    forged = rogue.publish("roadwatch/v1/n2/gate/events/intrusion", b'{"forged":true}', qos=1)
    alert = rogue.publish("roadwatch/v1/alerts/n2/gate/intrusion", b'{"forged":true}', qos=1)
    assert acked.wait(5)
    assert acks[forged.mid] == 0x87 and acks[alert.mid] == 0x87  # MQTT 5 PUBACK: not authorized
    # Nodes read nothing: n1 subscribed to everything receives n2's own legit event.
    seen: list[str] = []
    rogue.on_message = lambda _c, _u, msg: seen.append(msg.topic)
    rogue.subscribe("roadwatch/v1/#", qos=1)
    time.sleep(0.3)
    legit = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="legit-n2", protocol=mqtt.MQTTv5)
    legit.username_pw_set("n2", USERS["n2"])
    legit.connect("127.0.0.1", secure_broker.port)
    legit.loop_start()
    legit.publish("roadwatch/v1/n2/gate/events/intrusion", b'{"legit":true}', qos=1).wait_for_publish(5)
    assert rx.wait_for(lambda: any(m.payload == b'{"legit":true}' for m in rx.snapshot()), 5)
    time.sleep(0.3)
    for client in (rogue, legit):
        client.disconnect()
        client.loop_stop()
    rx.close()
    assert not any(b"forged" in m.payload for m in rx.snapshot())
    assert seen == []


def _node_proc(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    with (tmp_path / "node.log").open("a") as log:
        return subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "mqtt_node_proc.py"),
                "--port",
                str(port),
                "--db",
                str(tmp_path / "node.sqlite"),
                "--count",
                "3",
                "--hold",
                "--keepalive",
                "5",
                "--username",
                "n1",
                "--password-env",
                "RW_TEST_PW",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "RW_TEST_PW": USERS["n1"]},
        )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "frozen"])
def test_status_flips_to_offline_when_the_node_dies(secure_broker: Broker, tmp_path: Path, how: str) -> None:
    """SIGKILL closes the socket (the broker sends the will at once); a frozen box (SIGSTOP, like a power
    cut on the far side of a router) is noticed after 1.5 x keepalive."""
    rx = aggregator(secure_broker.port)
    proc = _node_proc(tmp_path, secure_broker.port)
    try:
        assert rx.wait_for(lambda: rx.status("n1")[-1:] == ["online"], 15)
        assert rx.wait_for(lambda: len(rx.event_ids()) == 3, 5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGSTOP)
        assert rx.wait_for(lambda: rx.status("n1")[-1:] == ["offline"], 20)
        elapsed = time.monotonic() - t0
        assert elapsed < (2 if how == "sigkill" else 16)  # 7.5 s plus Mosquitto's keepalive sweep
        if how == "frozen":
            assert elapsed > 4  # really the keepalive path, not a closed socket
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        rx.close()
    offline = json.loads([m for m in rx.snapshot() if m.topic == "roadwatch/v1/n1/status"][-1].payload)
    jsonschema.validate(offline, load_schema("status"))
    assert offline["node"] == "n1"


def _make_certs(tmp: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed")
    assert openssl is not None
    ext = tmp / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="ascii")
    paths = {name: tmp / name for name in ("ca.key", "ca.crt")}

    def run(*args: str | Path) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=roadwatch-test-ca",
        "-keyout",
        paths["ca.key"],
        "-out",
        paths["ca.crt"],
    )
    for who in ("server", "client"):
        key, csr, crt = tmp / f"{who}.key", tmp / f"{who}.csr", tmp / f"{who}.crt"
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout", key, "-out", csr)
        run(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            paths["ca.crt"],
            "-CAkey",
            paths["ca.key"],
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            crt,
            *(("-extfile", ext) if who == "server" else ()),
        )
        paths[f"{who}.key"], paths[f"{who}.crt"] = key, crt
    return paths


@pytest.mark.parametrize("mutual", [False, True], ids=["server-auth", "mutual-tls"])
def test_tls_listener(tmp_path: Path, mutual: bool) -> None:
    certs = _make_certs(tmp_path)
    tls_port = free_port()
    broker = make_broker(
        tmp_path,
        f"user {getpass.getuser()}\nlistener {tls_port} 127.0.0.1\ncafile {certs['ca.crt']}\n"
        f"certfile {certs['server.crt']}\nkeyfile {certs['server.key']}\ntls_version tlsv1.2\n"
        f"require_certificate {'true' if mutual else 'false'}\n",
    )
    broker.start()
    rx = Receiver(broker.port)  # the aggregator on the plain loopback listener
    tls = TlsSettings(
        ca_file=str(certs["ca.crt"]),
        cert_file=str(certs["client.crt"]) if mutual else None,
        key_file=str(certs["client.key"]) if mutual else None,
    )
    outbox = Outbox(tmp_path / "o.sqlite")
    publisher = Publisher("n1", MqttSettings(port=tls_port, tls=tls), outbox)
    try:
        assert rx.subscribed.wait(5)
        publisher.start()
        event = EventFactory("n1", "gate", "UTC", texts=_texts).make("intrusion", "yard", time.time())
        OutboxSink(outbox, publisher).put(event, None)
        assert rx.wait_for(lambda: rx.event_ids() == {event.event_id}, 10)
    finally:
        publisher.stop(2)
        rx.close()
        broker.stop()
    assert publisher.stats().connects == 1  # the only way in on that port is the TLS handshake


def test_tls_without_client_certificate_is_refused_by_a_mutual_tls_listener(tmp_path: Path) -> None:
    certs = _make_certs(tmp_path)
    tls_port = free_port()
    broker = make_broker(
        tmp_path,
        f"user {getpass.getuser()}\nlistener {tls_port} 127.0.0.1\ncafile {certs['ca.crt']}\n"
        f"certfile {certs['server.crt']}\nkeyfile {certs['server.key']}\nrequire_certificate true\n",
    )
    broker.start()
    settings = MqttSettings(port=tls_port, tls=TlsSettings(ca_file=str(certs["ca.crt"])))
    publisher = Publisher("n1", settings, Outbox(tmp_path / "o.sqlite"))
    try:
        publisher.start()
        time.sleep(1.5)
        assert not publisher.connected and publisher.stats().connects == 0
    finally:
        publisher.stop(1)
        broker.stop()
