"""End to end over a real Mosquitto: outbox -> publisher -> broker -> an aggregator-like receiver.

Delivery is at least once; these tests check what the issue demands of it: nothing lost, nothing stored
twice, order kept, payloads valid against the shipped JSON Schema, and survival of a broker outage and
of a SIGKILLed node.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import Broker, make_broker
from mqtt_node_proc import Receiver
from support import wait_for

from contract.schemas import load_schema
from edge.config import NodeMqttSettings as MqttSettings
from edge.config import OutboxSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.publisher import OutboxSink, Publisher

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": f"{kind} on {rule}", "vi": f"{kind} {rule}"}


FACTORY = EventFactory("n1", "gate", "Asia/Ho_Chi_Minh", texts=_texts)


def settings(port: int, **kw: Any) -> MqttSettings:
    """Broker-level transport: these tests have no aggregator, so events leave the outbox at PUBACK
    (end-to-end delivery is tested in test_delivery_e2e.py)."""
    kw.setdefault("delivery", "broker")
    return MqttSettings(port=port, reconnect_min_s=1, reconnect_max_s=2, keepalive_s=5, **kw)


def put_events(sink: OutboxSink, n: int, start: int = 0, snapshot_every: int = 3) -> list[str]:
    ids = []
    for i in range(start, start + n):
        event = FACTORY.make(
            "line_crossing",
            "north_line",
            time.time(),
            classes=("car",),
            track_ids=(i,),
            confidence=0.8,
            box=(1.0, 2.0, 30.0, 40.0),
            measurements={"direction": "in", "count": i},
        )
        sink.put(event, (b"\xff\xd8" + i.to_bytes(4, "big") * 50) if i % snapshot_every == 0 else None)
        ids.append(event.event_id)
    return ids


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_events_arrive_once_in_order_and_valid(broker: Broker, tmp_path: Path, protocol: str) -> None:
    n = 1000 if protocol == "5" else 200
    receiver = Receiver(broker.port)
    assert receiver.subscribed.wait(5)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = Publisher("n1", settings(broker.port, protocol=protocol), outbox)
    publisher.start()
    try:
        ids = put_events(OutboxSink(outbox, publisher), n)
        assert receiver.wait_for(lambda: len(receiver.events()) >= n, 60), f"got {len(receiver.events())}"
        assert receiver.wait_for(lambda: outbox.depth() == 0, 10)
    finally:
        publisher.stop(5)
    time.sleep(0.3)  # let a stray duplicate show up if there were one
    events = receiver.events()
    assert [e["event_id"] for e in events] == ids  # exactly once each, in order
    assert [e["seq"] for e in events] == list(range(1, n + 1))
    validator = jsonschema.Draft202012Validator(load_schema("event"))
    for e in events:
        validator.validate(e)
    # Each snapshot arrives before its event, with the announced size and hash.
    msgs = receiver.snapshot()
    with_snapshot = [e for e in events if e["snapshot"] is not None]
    assert len(with_snapshot) == len(range(0, n, 3))
    for e in with_snapshot:
        snap_topic = e["snapshot"]["topic"]
        jpeg = next(m.payload for m in msgs if m.topic == snap_topic)
        assert hashlib.sha256(jpeg).hexdigest() == e["snapshot"]["sha256"]
        assert len(jpeg) == e["snapshot"]["bytes"]
    order = [m.topic for m in msgs if "/snapshots/" in m.topic or "/events/" in m.topic]
    snap_index = {t: i for i, t in enumerate(order) if "/snapshots/" in t}
    event_index = [i for i, t in enumerate(order) if "/events/" in t]
    for e, idx in zip(events, event_index, strict=True):
        if e["snapshot"] is not None:
            assert snap_index[e["snapshot"]["topic"]] < idx
    assert receiver.status("n1")[-1] == "stopped"
    assert publisher.stats().acked == n and publisher.stats().rejected == 0
    receiver.close()


def test_status_is_online_then_stopped_and_retained(broker: Broker, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = Publisher("n1", settings(broker.port), outbox)
    publisher.start()
    late = None
    try:
        assert wait_for(lambda: publisher.connected, 10)
        late = Receiver(broker.port, topic="roadwatch/v1/n1/status", client_id="late")
        assert late.wait_for(lambda: late.status("n1") == ["online"], 5)  # retained
        assert publisher.publish_stats({"v": 1, "node": "n1"})
    finally:
        publisher.stop(5)
    assert late.wait_for(lambda: late.status("n1") == ["online", "stopped"], 5)
    payload = json.loads(late.snapshot()[-1].payload)
    jsonschema.validate(payload, load_schema("status"))
    late.close()


@pytest.mark.slow
def test_broker_outage_of_20_s_loses_nothing(tmp_path: Path) -> None:
    # The broker keeps its sessions on disk, as in production, so the receiver's session outlives the
    # restart and it receives what the node delivers after it.
    # `user` keeps a root-run mosquitto from dropping to a user that cannot write the temporary directory.
    broker = make_broker(
        tmp_path, f"persistence true\npersistence_location {tmp_path}/\nuser {getpass.getuser()}\n"
    )
    broker.start()
    receiver = Receiver(broker.port)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = Publisher("n1", settings(broker.port), outbox)
    sink = OutboxSink(outbox, publisher)
    produced: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            produced.extend(put_events(sink, 1, start=i))
            i += 1
            time.sleep(0.05)  # 20 events/s

    try:
        assert receiver.subscribed.wait(5)
        publisher.start()
        producer = threading.Thread(target=produce)
        producer.start()
        assert receiver.wait_for(lambda: len(receiver.event_ids()) >= 40, 10)
        broker.stop()
        stopped_at = len(produced)
        assert wait_for(lambda: not publisher.connected, 5)
        time.sleep(20)
        during_outage = len(produced) - stopped_at
        assert outbox.depth() >= during_outage - 1 > 100  # stored while the broker was away
        broker.start()
        time.sleep(3)
        stop.set()
        producer.join()
        assert receiver.wait_for(lambda: receiver.event_ids() >= set(produced), 30), (
            f"missing {len(set(produced) - receiver.event_ids())} of {len(produced)}"
        )
        assert receiver.wait_for(lambda: outbox.depth() == 0, 10)
    finally:
        stop.set()
        publisher.stop(5)
        receiver.close()
        broker.stop()
    seqs = sorted({e["seq"] for e in receiver.events()})
    assert seqs == list(range(1, len(produced) + 1))  # no gap in the node's sequence
    assert publisher.stats().disconnects >= 1


def _start_node(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[str]:
    with (tmp_path / "node.log").open("a") as log:
        return subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "mqtt_node_proc.py"),
                "--port",
                str(port),
                "--db",
                str(tmp_path / "node.sqlite"),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def _read_stored(proc: subprocess.Popen[str], until: int, stored: list[str], timeout: float = 30) -> None:
    """Collect `stored <seq> <id>` lines until `until` of them have been seen."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while len(stored) < until and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("stored "):
            stored.append(line.split()[2])
    assert len(stored) >= until, f"node stored only {len(stored)}"


@pytest.mark.slow
def test_sigkilled_node_delivers_its_stored_events_after_restart(broker: Broker, tmp_path: Path) -> None:
    receiver = Receiver(broker.port)
    assert receiver.subscribed.wait(5)
    first = _start_node(tmp_path, broker.port, "--count", "1000", "--rate", "100")
    stored: list[str] = []
    try:
        _read_stored(first, 50, stored)
        assert receiver.wait_for(lambda: len(receiver.event_ids()) >= 20, 10)
        # Freeze the broker so that the node surely holds sent-but-unacknowledged events when it dies.
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        # Lines still in the pipe may name events acknowledged before the freeze: read well past
        # them so that at least 30 were surely stored while the broker could not answer.
        _read_stored(first, len(stored) + 60, stored)
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        assert first.stdout is not None
        stored += [line.split()[2] for line in first.stdout if line.startswith("stored ")]  # before the kill
    finally:
        if broker.proc is not None:
            broker.proc.send_signal(signal.SIGCONT)
        if first.poll() is None:
            first.kill()
            first.wait()
        if first.stdout is not None:
            first.stdout.close()
    db = sqlite3.connect(tmp_path / "node.sqlite")
    left = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    db.close()
    assert left >= 30  # unacknowledged when the node died
    second = _start_node(tmp_path, broker.port, "--count", "20", "--rate", "50")
    more: list[str] = []
    _read_stored(second, 20, more)
    try:
        assert second.wait(30) == 0, "restarted node did not drain its outbox"
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
        if second.stdout is not None:
            second.stdout.close()
    wanted = set(stored) | set(more)
    assert receiver.wait_for(lambda: receiver.event_ids() >= wanted, 10), (
        f"missing {len(wanted - receiver.event_ids())} events"
    )
    seqs = sorted({e["seq"] for e in receiver.events()})
    assert seqs == list(range(1, max(seqs) + 1))  # no gap, the sequence went on after the restart
    assert len(receiver.event_ids()) == max(seqs)
    with Outbox(tmp_path / "node.sqlite", OutboxSettings()) as box:
        assert box.depth() == 0
    receiver.close()
