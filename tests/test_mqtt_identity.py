"""Client-id takeover on the broker as shipped: one account cannot use another's client id.

Without `use_username_as_clientid`, n1's credentials with the aggregator's client id kick the aggregator
off, and a clean start erases its persistent session: every event queued while it was away is lost.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import Broker, make_secure_broker
from paho.mqtt.enums import CallbackAPIVersion
from support import wait_for

from central.config import StationMqttSettings as CentralMqtt
from central.ingest import EventItem, IngestCounters, Item, MqttIngest
from common.settings import SecretRef
from edge.config import NodeMqttSettings as MqttSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.publisher import OutboxSink, Publisher

pytestmark = pytest.mark.integration

USERS = {"n1": "pw-n1", "n2": "pw-n2", "aggregator": "pw-agg"}
# ids a rogue n1 tries: the aggregator's user name and its configured default id, and n2's ids
STOLEN_IDS = ("aggregator", "roadwatch-central", "n2", "roadwatch-edge-n2")


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": kind}


@pytest.fixture
def shipped_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    for user, pw in USERS.items():
        monkeypatch.setenv(f"RW_PW_{user.upper()}", pw)
    broker = make_secure_broker(tmp_path, USERS)
    broker.start()
    yield broker
    broker.stop()


def ingest(port: int) -> tuple[MqttIngest, queue.Queue[Item]]:
    settings = CentralMqtt(
        port=port, username="aggregator", password=SecretRef(env="RW_PW_AGGREGATOR"), reconnect_max_s=2
    )
    out: queue.Queue[Item] = queue.Queue()
    agg = MqttIngest(settings, out, IngestCounters())
    agg.start()
    assert agg.connected.wait(5)
    return agg, out


def node(port: int, name: str, tmp: Path) -> tuple[Publisher, Outbox]:
    # identity, not delivery, is under test here: the bare ingest publishes no storage watermark
    settings = MqttSettings(
        port=port,
        username=name,
        password=SecretRef(env=f"RW_PW_{name.upper()}"),
        reconnect_max_s=2,
        delivery="broker",
    )
    outbox = Outbox(tmp / f"{name}.sqlite")
    publisher = Publisher(name, settings, outbox)
    publisher.start()
    assert wait_for(lambda: publisher.connected, 5)
    return publisher, outbox


def rogue_connect(port: int, client_id: str) -> int:
    """Connect with n1's credentials, `client_id` and a clean start; the CONNACK reason code."""
    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set("n1", USERS["n1"])
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason.value)
    client.connect("127.0.0.1", port, clean_start=True)
    client.loop_start()
    try:
        assert wait_for(lambda: bool(codes), 5)
        time.sleep(0.3)  # a takeover would disconnect the victim by now
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def stored_ids(out: queue.Queue[Item]) -> set[str]:
    ids: set[str] = set()
    while not out.empty():
        item = out.get_nowait()
        if isinstance(item, EventItem):
            ids.add(item.row.event_id)
    return ids


def test_a_node_cannot_kick_off_the_aggregator_or_another_node(
    shipped_broker: Broker, tmp_path: Path
) -> None:
    agg, _ = ingest(shipped_broker.port)
    n2, _ = node(shipped_broker.port, "n2", tmp_path)
    try:
        for client_id in STOLEN_IDS:
            assert rogue_connect(shipped_broker.port, client_id) == 0  # n1 gets in, as itself
        time.sleep(0.5)
        assert agg.connected.is_set()
        stats = n2.stats()
        assert stats.connected and (stats.connects, stats.disconnects) == (1, 0)
    finally:
        n2.stop(2)
        agg.stop()


def test_a_node_cannot_erase_the_aggregators_queued_events(shipped_broker: Broker, tmp_path: Path) -> None:
    agg, _ = ingest(shipped_broker.port)
    agg.stop()  # away; its persistent session queues what arrives meanwhile
    n2, outbox = node(shipped_broker.port, "n2", tmp_path)
    factory = EventFactory("n2", "gate", "UTC", texts=_texts)
    sink = OutboxSink(outbox, n2)
    sent = set()
    for i in range(50):
        event = factory.make("intrusion", "yard", time.time(), track_ids=(i,))
        sink.put(event, None)
        sent.add(event.event_id)
    try:
        assert wait_for(lambda: n2.stats().acked == 50, 10)
        for client_id in ("aggregator", "roadwatch-central"):
            assert rogue_connect(shipped_broker.port, client_id) == 0
        again, out = ingest(shipped_broker.port)
        received: set[str] = set()
        assert wait_for(lambda: received.update(stored_ids(out)) or received == sent, 10), len(received)
        again.stop()
    finally:
        n2.stop(2)
