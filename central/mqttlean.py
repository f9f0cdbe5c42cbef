"""The aggregator's paho client, without paho's per-message MQTT 5 properties object.

Why: for every PUBLISH an MQTT 5 client receives, paho 2 builds a `Properties` object and clears it
attribute by attribute (about 27 names, each through string replaces and `hasattr`), even when the
message carries no properties at all, which is every message a node sends. Measured on the 2-core
development VM that was 32-47 us per message, a tenth to a sixth of the aggregator's whole CPU per event,
spent in the GIL-bound network thread that bounds ingest (docs/benchmarks.md, "Central aggregator").

Here a QoS 1 PUBLISH with an empty property block is decoded directly into the same `MQTTMessage`
paho would make (topic, payload, packet id, flags; `properties` None). Anything else (properties present,
QoS 0 or 2, MQTT 3.1.1, an empty topic) goes through paho's own code unchanged. The aggregator reads no
property of an incoming message. `tests/test_mqttlean.py` checks both paths give the same messages.
"""

from __future__ import annotations

import struct

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

_U16 = struct.Struct("!H")

# What the fast path reads of paho's private client state (checked by `lean_client_class`).
_PRIVATE = ("_in_packet", "_protocol", "_manual_ack", "_handle_on_message", "_send_puback", "_handle_publish")


def lean_client_class() -> type[mqtt.Client]:
    """`LeanClient` where the installed paho is the 2.x line it was written against, else paho's own.

    The fast path reads private paho state; a paho release that renames any of it must cost speed,
    never messages, so the aggregator falls back to `mqtt.Client` instead of failing in its network loop.
    """
    version = str(getattr(paho.mqtt, "__version__", ""))
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    has_all = all(hasattr(probe, name) for name in _PRIVATE) and hasattr(mqtt, "time_func")
    return LeanClient if version.startswith("2.") and has_all else mqtt.Client


class LeanClient(mqtt.Client):
    """`mqtt.Client` with the fast path above for incoming QoS 1 messages."""

    def _handle_publish(self) -> MQTTErrorCode:
        header = self._in_packet["command"]
        packet = self._in_packet["packet"]
        if self._protocol != mqtt.MQTTv5 or (header & 0x06) >> 1 != 1 or len(packet) < 2:
            return super()._handle_publish()
        (topic_len,) = _U16.unpack_from(packet, 0)
        props_at = 2 + topic_len + 2  # topic, packet id, then the property length
        if topic_len == 0 or len(packet) <= props_at or packet[props_at] != 0:
            return super()._handle_publish()  # properties present (a topic alias, ...): paho's way
        (mid,) = _U16.unpack_from(packet, 2 + topic_len)
        message = mqtt.MQTTMessage(mid=mid, topic=bytes(packet[2 : 2 + topic_len]))
        message.dup = bool(header & 0x08)
        message.qos = 1
        message.retain = bool(header & 0x01)
        message.payload = bytes(packet[props_at + 1 :])
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if self._manual_ack:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._send_puback(message.mid)
