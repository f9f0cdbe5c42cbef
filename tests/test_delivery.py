"""End-to-end acknowledgement, unit level: watermarks, the node's awaiting set, the aggregator's payload,
and the shipped ACL around the ack topic (only the aggregator writes it, only its node reads it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from conftest import Broker, make_secure_broker
from paho.mqtt.enums import CallbackAPIVersion

from central.acks import MAX_MISSING, watermark_payload
from contract.schemas import load_schema
from edge.transport.delivery import Awaiting, Watermark, parse_watermark

USERS = {"n1": "pw-n1", "n2": "pw-n2", "aggregator": "pw-agg"}


@pytest.mark.parametrize(
    ("upto", "missing", "seq", "covered"),
    [(10, (), 10, True), (10, (), 11, False), (10, ((3, 5),), 4, False), (10, ((3, 5),), 6, True),
     (10, ((3, 5), (8, 8)), 8, False), (0, (), 1, False)],
)  # fmt: skip
def test_watermark_covers(upto: int, missing: tuple[tuple[int, int], ...], seq: int, covered: bool) -> None:
    assert Watermark(upto, missing, 0.0).covers(seq) is covered


@pytest.mark.parametrize(
    ("payload", "ok"),
    [(b'{"v":1,"node":"n1","upto":5,"missing":[[2,3]],"ts":"x"}', True),
     (b'{"v":1,"node":"n2","upto":5,"missing":[],"ts":"x"}', False),  # another node's
     (b'{"v":2,"node":"n1","upto":5,"missing":[]}', False), (b'{"v":1,"node":"n1","upto":-1,"missing":[]}', False),
     (b'{"v":1,"node":"n1","upto":"5","missing":[]}', False), (b"not json", False), (b"[]", False),
     (b'{"v":1,"node":"n1","upto":5,"missing":[[1]]}', False)],
)  # fmt: skip
def test_parse_watermark(payload: bytes, ok: bool) -> None:
    assert (parse_watermark(payload, "n1", 1.0) is not None) is ok


def test_awaiting_confirms_only_after_the_puback_and_within_the_counter() -> None:
    aw = Awaiting(timeout_s=10.0)
    aw.add([1, 2, 3, 4], now=100.0)
    assert aw.confirm(Watermark(4, (), received=99.0), next_seq=5) == []  # heard before the PUBACKs
    assert aw.confirm(Watermark(9, (), received=101.0), next_seq=5) == []  # beyond anything made
    assert sorted(aw.confirm(Watermark(4, ((2, 2),), received=101.0), next_seq=5)) == [1, 3, 4]
    assert aw.due(105.0) == [] and aw.due(110.0) == [2]  # resent after the timeout
    aw.add([2], now=111.0)
    assert aw.due(130.0) == [] and aw.due(131.0) == [2]  # the next wait doubled
    aw.add([2], now=132.0)
    assert aw.confirm(Watermark(4, (), received=133.0), next_seq=5) == [2] and not aw.pubacked


def test_watermark_payload_matches_the_schema_and_never_covers_unlisted_gaps() -> None:
    schema = load_schema("ack")
    payload = watermark_payload("n1", 20, [(3, 4), (25, 30)], time.time())
    jsonschema.validate(payload, schema)
    assert payload["upto"] == 20 and payload["missing"] == [[3, 4]]
    many = [(i * 3, i * 3 + 1) for i in range(1, MAX_MISSING + 10)]
    big = watermark_payload("n1", 10_000, many, time.time())
    jsonschema.validate(big, schema)
    assert isinstance(big["missing"], list)
    assert len(big["missing"]) == MAX_MISSING and big["upto"] == many[MAX_MISSING][0] - 1
    mark = parse_watermark(json.dumps(big).encode(), "n1", 0.0)
    assert mark is not None and not any(mark.covers(s) for lo, hi in many for s in (lo, hi))


@pytest.fixture
def shipped_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = make_secure_broker(tmp_path, USERS)
    broker.start()
    yield broker
    broker.stop()


def _client(port: int, user: str, seen: list[tuple[str, bytes]], acks: dict[int, int]) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, USERS[user])
    c.on_message = lambda _c, _u, msg: seen.append((msg.topic, bytes(msg.payload)))
    c.on_publish = lambda _c, _u, mid, reason, _p: acks.__setitem__(mid, reason.value)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


@pytest.mark.integration
def test_only_the_aggregator_writes_a_nodes_ack_and_only_that_node_reads_it(shipped_broker: Broker) -> None:
    seen: dict[str, list[tuple[str, bytes]]] = {u: [] for u in USERS}
    acks: dict[str, dict[int, int]] = {u: {} for u in USERS}
    clients = {u: _client(shipped_broker.port, u, seen[u], acks[u]) for u in USERS}
    topic = "roadwatch/v1/n1/ack"
    try:
        for user in ("n1", "n2"):
            clients[user].subscribe(topic, qos=1)
        time.sleep(0.5)
        forged = clients["n1"].publish(topic, b'{"forged":1}', qos=1, retain=True)
        other = clients["n2"].publish(topic, b'{"forged":2}', qos=1, retain=True)
        real = clients["aggregator"].publish(topic, b'{"real":1}', qos=1, retain=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
            forged.mid in acks["n1"] and other.mid in acks["n2"] and real.mid in acks["aggregator"]
        ):
            time.sleep(0.05)
        assert acks["n1"][forged.mid] == 0x87 and acks["n2"][other.mid] == 0x87
        assert acks["aggregator"][real.mid] == 0
        time.sleep(0.5)
        assert seen["n1"] == [(topic, b'{"real":1}')]
        assert seen["n2"] == []
    finally:
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
