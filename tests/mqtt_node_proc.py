"""Helpers for the MQTT transport tests: a stand-alone edge node process and an aggregator-like receiver.

Run as a script it is a minimal edge node (outbox + publisher, no cameras) that the tests can kill with
SIGKILL; it prints `stored <seq> <event_id>` after each committed put, so the test knows exactly which
events the node had stored when it died. Imported, it offers `Receiver`, the test's view of the station.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import wait_for

from common.settings import SecretRef
from edge.config import NodeMqttSettings as MqttSettings
from edge.config import OutboxSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.publisher import Publisher
from edge.transport.signing import Signer


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    t: float


class Receiver:
    """A QoS 1 subscriber on a persistent MQTT 5 session (fixed client id, clean_start False).

    The broker queues messages for it while it is away, so it sees everything published after its
    first subscription, even across its own reconnects.
    """

    def __init__(
        self,
        port: int,
        topic: str = "roadwatch/v1/#",
        client_id: str = "test-aggregator",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.topic = topic
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, keepalive=10, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, bytes(msg.payload), time.monotonic()))

    def snapshot(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def events(self) -> list[dict[str, Any]]:
        """Event payloads in arrival order (duplicates included)."""
        return [json.loads(m.payload) for m in self.snapshot() if "/events/" in m.topic]

    def event_ids(self) -> set[str]:
        return {e["event_id"] for e in self.events()}

    def status(self, node: str) -> list[str]:
        return [
            json.loads(m.payload)["state"] for m in self.snapshot() if m.topic.endswith(f"/{node}/status")
        ]

    def wait_for(self, predicate: Any, timeout: float) -> float:
        return wait_for(predicate, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": f"{kind} on {rule}", "vi": f"{kind} {rule}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="minimal edge node for MQTT transport tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--node", default="n1")
    ap.add_argument("--count", type=int, default=100, help="events to store")
    ap.add_argument("--rate", type=float, default=100.0, help="events per second")
    ap.add_argument("--snapshot-bytes", type=int, default=2000)
    ap.add_argument("--keepalive", type=int, default=5)
    ap.add_argument("--username", default=None)
    ap.add_argument("--password-env", default=None)
    ap.add_argument("--hold", action="store_true", help="keep running after storing (until killed)")
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    ap.add_argument("--delivery", choices=["broker", "aggregator"], default="broker")
    ap.add_argument("--ack-timeout", type=float, default=60.0)
    ap.add_argument("--signing-key", default=None, help="PEM Ed25519 key: sign every event")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")

    settings = MqttSettings(
        port=args.port,
        keepalive_s=args.keepalive,
        reconnect_min_s=1,
        reconnect_max_s=2,
        username=args.username,
        password=SecretRef(env=args.password_env) if args.password_env else None,
        delivery=args.delivery,
        ack_timeout_s=args.ack_timeout,
    )
    sign = Signer.from_file(args.signing_key).sign if args.signing_key else None
    outbox = Outbox(args.db, OutboxSettings(synchronous="FULL"), sign=sign)
    publisher = Publisher(args.node, settings, outbox)
    publisher.start()
    print(f"started depth={outbox.depth()}", flush=True)
    factory = EventFactory(args.node, "gate", "Asia/Ho_Chi_Minh", texts=_texts)
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    for i in range(args.count):
        event = factory.make("line_crossing", "north_line", time.time(), classes=("car",), track_ids=(i,))
        jpeg = os.urandom(args.snapshot_bytes) if args.snapshot_bytes and i % 2 == 0 else None
        seq = outbox.put(event, jpeg)
        publisher.wake()
        print(f"stored {seq} {event.event_id}", flush=True)
        if period:
            time.sleep(period)
    if args.hold:
        print("holding", flush=True)
        signal.pause()
    deadline = time.monotonic() + args.drain_timeout
    while outbox.depth() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"drained depth={outbox.depth()}", flush=True)
    publisher.stop(5.0)
    outbox.close()
    return 0 if outbox.depth() == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
