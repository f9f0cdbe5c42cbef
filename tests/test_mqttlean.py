"""The aggregator's lean paho client (central/mqttlean.py) turns each PUBLISH into the very message
paho's own decoder makes, and leaves what it does not handle to paho."""

from __future__ import annotations

import struct

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from central.mqttlean import LeanClient, lean_client_class

Seen = tuple[str, bytes, int, int, bool, bool, bool]  # topic, payload, qos, mid, retain, dup, no properties


def publish_packet(
    topic: bytes, payload: bytes, qos: int, mid: int, props: bytes, flags: int
) -> tuple[int, bytes]:
    """(fixed header's first byte, the rest after the remaining length), MQTT 5."""
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    return 0x30 | flags | qos << 1, body + bytes([len(props)]) + props + payload


def received(
    cls: type[mqtt.Client], header: int, packet: bytes, protocol: MQTTProtocolVersion
) -> tuple[list[Seen], int]:
    """Feed one PUBLISH to a client's handler; what on_message saw and the handler's return code."""
    client = cls(CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol, manual_ack=True)
    seen: list[Seen] = []
    client.on_message = lambda c, u, m: seen.append(
        (m.topic, bytes(m.payload), m.qos, m.mid, m.retain, m.dup, m.properties is None)
    )
    client._in_packet["command"] = header
    client._in_packet["packet"] = bytearray(packet)
    rc = client._handle_publish()
    return seen, int(rc)


# (topic, payload, qos, mid, property bytes, flags: 0x08 dup, 0x01 retain, protocol, lean path taken)
CASES = [
    (b"roadwatch/v1/n1/gate/events/line_crossing", b'{"seq": 1}', 1, 7, b"", 0, mqtt.MQTTv5, True),
    (b"roadwatch/v1/n1/gate/events/line_crossing", b"", 1, 65535, b"", 0, mqtt.MQTTv5, True),
    (b"roadwatch/v1/n1/status", b"online", 1, 1, b"", 0x01, mqtt.MQTTv5, True),  # retained
    (b"roadwatch/v1/n1/status", b"online", 1, 2, b"", 0x08, mqtt.MQTTv5, True),  # redelivered
    ("roadwatch/v1/nút/cổng/events/x".encode(), "Xe máy".encode(), 1, 3, b"", 0, mqtt.MQTTv5, True),
    (b"roadwatch/v1/n1/stats", b"{}", 1, 4, b"\x01\x01", 0, mqtt.MQTTv5, False),  # a property: paho's way
    (b"roadwatch/v1/n1/stats", b"{}", 0, 0, b"", 0, mqtt.MQTTv5, False),  # QoS 0: paho's way
]


@pytest.mark.parametrize(("topic", "payload", "qos", "mid", "props", "flags", "protocol", "lean"), CASES)
def test_lean_client_decodes_like_paho(
    topic: bytes,
    payload: bytes,
    qos: int,
    mid: int,
    props: bytes,
    flags: int,
    protocol: MQTTProtocolVersion,
    lean: bool,
) -> None:
    header, packet = publish_packet(topic, payload, qos, mid, props, flags)
    ours, rc = received(LeanClient, header, packet, protocol)
    theirs, paho_rc = received(mqtt.Client, header, packet, protocol)
    assert rc == paho_rc == 0
    assert len(ours) == 1
    topic_, payload_, qos_, mid_, retain, dup, no_props = ours[0]
    assert (topic_, payload_, qos_, mid_, retain, dup) == (
        topic.decode(),
        payload,
        qos,
        mid,
        flags & 1 == 1,
        flags & 8 == 8,
    )
    assert ours[0][:6] == theirs[0][:6]
    assert no_props is lean  # the lean path leaves out paho's empty properties object


def test_lean_client_takes_mqtt_3_messages_the_paho_way() -> None:
    packet = struct.pack("!H", 3) + b"a/b" + struct.pack("!H", 9) + b"payload"
    ours, _ = received(LeanClient, 0x32, packet, mqtt.MQTTv311)
    theirs, _ = received(mqtt.Client, 0x32, packet, mqtt.MQTTv311)
    assert ours == theirs == [("a/b", b"payload", 1, 9, False, False, True)]


def test_the_aggregator_uses_the_fast_path_only_on_the_paho_it_was_written_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A paho that renames the private state the fast path reads costs speed, never messages."""
    assert lean_client_class() is LeanClient  # the paho this project installs (2.x)
    monkeypatch.setattr(paho.mqtt, "__version__", "3.0.0")
    assert lean_client_class() is mqtt.Client
    monkeypatch.setattr(paho.mqtt, "__version__", "2.9.0")
    monkeypatch.delattr(mqtt.Client, "_send_puback")
    assert lean_client_class() is mqtt.Client
