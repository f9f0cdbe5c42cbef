"""MQTT ingest: a persistent session that validates every message and hands it to the writer.

The session is persistent (fixed client id, MQTT 5 `clean_start=False` with a session expiry, or 3.1.1
`clean_session=False`) and acknowledges manually: a QoS 1 message is PUBACKed only after the writer has
committed it, so an aggregator killed at any instant loses nothing; the broker redelivers what was not
acknowledged and the idempotent insert drops the copies. Rejected messages are acknowledged at once
(redelivering them would not make them valid), counted by reason and logged truncated.

The paho network thread only parses and validates; a full hand-off queue blocks it, which stops reading
from the socket and lets the broker queue, instead of dropping anything. Where Ed25519 signatures are
checked, everything goes through the verifier stage (central/verifier.py) first, in arrival order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.config import StationMqttSettings
from central.mqttlean import lean_client_class
from central.signatures import SignatureChecker
from central.store import EventRow
from common.mqttclient import AUTH_FAILURES, new_client
from contract.clips import clip_filter
from contract.topics import parse_topic
from contract.validate import (
    Rejection,
    validate_event,
    validate_snapshot,
    validate_stats,
    validate_status,
)

log = logging.getLogger(__name__)

PublishResult = Literal["sent", "queued", "failed"]
Publish = Callable[[str, bytes], PublishResult]  # topic, payload: how alerts and commands go out

LOG_PAYLOAD_CHARS = 120
LOG_PER_MINUTE = 10  # rejections logged per reason and minute: a broken node must not flood the journal


@dataclass(frozen=True, slots=True)
class Ack:
    """What the writer must acknowledge once the item is committed."""

    generation: int
    mid: int
    qos: int


@dataclass(frozen=True, slots=True)
class EventItem:
    row: EventRow
    ack: Ack | None


@dataclass(frozen=True, slots=True)
class SnapshotItem:
    event_id: str
    data: bytes
    received_epoch: float
    ack: Ack | None
    node: str = ""  # the node in the topic: it must be the event's node (central/binding.py)


@dataclass(frozen=True, slots=True)
class StatusItem:
    node: str
    state: str
    received_epoch: float
    ack: Ack | None


@dataclass(frozen=True, slots=True)
class StatsItem:
    node: str
    stats: dict[str, Any]
    received_epoch: float
    ack: Ack | None


Item = EventItem | SnapshotItem | StatusItem | StatsItem

# the verifier stage (central/verifier.py): message, its raw bytes, topic, the ingest's stop flag
Verify = Callable[[Item, bytes, str, threading.Event], None]


class IngestCounters:
    """Accepted and rejected message counts, readable from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self._log_window: dict[str, tuple[float, int]] = {}

    def accept(self, channel: str) -> None:
        with self._lock:
            self.accepted[channel] += 1

    def reject(self, reason: str, now: float) -> bool:
        """Count a rejection; True when it should be logged (at most LOG_PER_MINUTE per reason a minute)."""
        with self._lock:
            self.rejected[reason] += 1
            window, logged = self._log_window.get(reason, (now, 0))
            if now - window >= 60.0:
                window, logged = now, 0
            self._log_window[reason] = (window, logged + 1)
            return logged < LOG_PER_MINUTE

    def refuse(self, topic: str, rejection: Rejection, payload: bytes) -> None:
        """Count a refused message and log it, truncated and rate-limited."""
        if self.reject(rejection.reason, time.monotonic()):
            log.warning(
                "rejected message on %s: %s (%s); payload starts %r",
                topic[:200],
                rejection.reason,
                rejection.detail[:200],
                payload[:LOG_PAYLOAD_CHARS],
            )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "accepted": dict(self.accepted),
                "rejected": dict(self.rejected),
                "rejected_total": sum(self.rejected.values()),
            }


def event_row(data: dict[str, Any], epoch: float, received: float, sig_status: str | None = None) -> EventRow:
    return EventRow(
        event_id=data["event_id"],
        node=data["node"],
        camera=data["camera"],
        kind=data["kind"],
        phase=data["phase"],
        rule=data["rule"],
        seq=data["seq"],
        ts=data["ts"],
        ts_epoch=epoch,
        received_epoch=received,
        classes=tuple(data.get("classes") or ()),
        payload=data,
        sig_status=sig_status,
    )


def classify(
    topic: str,
    payload: bytes,
    prefix: str,
    ack: Ack | None,
    now: float,
    max_skew_s: float = 300.0,
    signatures: SignatureChecker | None = None,
) -> Item | Rejection:
    """Turn one MQTT message into a writer item, or say why it is refused.

    An event dated beyond `now + max_skew_s` (a node clock gone wrong, a forged 9999-12-31) is refused:
    it would stay first in every listing forever. Its receive time is stored beside its own time."""
    parsed = parse_topic(topic, prefix)
    if parsed is None:
        return Rejection("unknown_topic", topic[:200])
    if parsed.channel == "events":
        result = validate_event(parsed, payload)
        if isinstance(result, Rejection):
            return result
        event, data = result
        epoch = event.epoch()
        if epoch > now + max_skew_s:
            return Rejection("clock_skew", f"event dated {epoch - now:.0f} s after its arrival")
        signed, refused = signatures.check(data) if signatures is not None else (None, None)
        if refused is not None:
            return Rejection(refused, f"signature {signed}")
        return EventItem(event_row(data, epoch, now, signed), ack)
    if parsed.channel == "snapshots":
        snap = validate_snapshot(parsed, payload)
        return snap if isinstance(snap, Rejection) else SnapshotItem(parsed.leaf, snap, now, ack, parsed.node)
    if parsed.channel == "status":
        status = validate_status(parsed, payload)
        return status if isinstance(status, Rejection) else StatusItem(status.node, status.state, now, ack)
    stats = validate_stats(parsed, payload)
    if isinstance(stats, Rejection):
        return stats
    return StatsItem(stats.node, stats.model_dump(mode="json"), now, ack)


class MqttIngest:
    """The aggregator's MQTT connection: subscribes, validates, queues, acknowledges, publishes alerts."""

    def __init__(
        self,
        settings: StationMqttSettings,
        out: queue.Queue[Item],
        counters: IngestCounters,
        signatures: SignatureChecker | None = None,
        on_clip: Callable[[str, bytes], bool] | None = None,
        verify: Verify | None = None,
    ) -> None:
        self.settings = settings
        self.verify = verify  # the verifier stage: then every message goes there, in order
        self.on_clip = on_clip  # clip uploads (central/clipfetch.py) bypass the writer
        self.signatures = signatures
        self.out = out
        self.counters = counters
        self.connected = threading.Event()
        self._generation = 0
        self._stopping = threading.Event()
        self._alerts_prefix = f"{settings.topic_prefix}/alerts/"
        # the shipped broker replaces the id with the user name (use_username_as_clientid): same here
        client_id = settings.username or settings.client_id
        self.client = new_client(
            settings, client_id, persistent=True, manual_ack=True, client_class=lean_client_class()
        )
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        if s.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = 1000  # lets the broker keep many QoS 1 messages in flight to us
            self.client.connect_async(s.host, s.port, s.keepalive_s, clean_start=False, properties=props)
        else:
            self.client.connect_async(s.host, s.port, s.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def topics(self) -> list[str]:
        p = self.settings.topic_prefix
        shared = f"$share/{self.settings.shared_group}/" if self.settings.shared_group else ""
        # status is retained and retained messages are not sent to shared subscriptions: every
        # aggregator reads node health itself
        out = [f"{shared}{p}/+/+/events/+", f"{shared}{p}/+/+/snapshots/+", f"{p}/+/status", f"{p}/+/stats"]
        # not shared: every chunk of a clip must reach the aggregator that assembles it
        return out + ([clip_filter(p)] if self.on_clip is not None else [])

    # -- acknowledgements (writer thread) ----------------------------------------------------------
    def ack(self, acks: list[Ack]) -> None:
        """PUBACK committed messages; acks of an earlier connection are void (the broker resends)."""
        for a in acks:
            if a.qos > 0 and a.generation == self._generation:
                self.client.ack(a.mid, a.qos)

    @property
    def generation(self) -> int:
        """Counts successful connects: 0 before the first."""
        return self._generation

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> PublishResult:
        """Publish an alert at QoS 1: `sent`, or `queued` while the broker is away (paho keeps a QoS 1
        message in memory and sends it after reconnecting; the queue is unbounded, alerts are few), or
        `failed`."""
        rc = self.client.publish(topic, payload, qos=qos, retain=retain).rc
        if rc == mqtt.MQTT_ERR_SUCCESS:
            return "sent"
        return "queued" if rc == mqtt.MQTT_ERR_NO_CONN and qos > 0 else "failed"

    # -- paho callbacks (network thread; nothing may raise) -----------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error(
                "broker %s:%d refused the connection: %s", self.settings.host, self.settings.port, reason
            )
            if reason.value in AUTH_FAILURES:  # bad credentials: a retry cannot fix it
                log.error("check mqtt.username and mqtt.password; not retrying")
                client.disconnect()
            return
        self._generation += 1
        log.info(
            "connected to %s:%d (session present: %s)",
            self.settings.host,
            self.settings.port,
            getattr(flags, "session_present", None),
        )
        client.subscribe([(t, 1) for t in self.topics()])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused subscriptions: %s", failed)
        self.connected.set()  # "connected" means ready: messages published from now on reach us

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("disconnected from broker: %s; reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        ack = Ack(self._generation, msg.mid, msg.qos)
        if msg.topic.startswith(self._alerts_prefix):  # our own alerts (node id `alerts` is reserved)
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)
            return
        if self.on_clip is not None and "/clips/" in msg.topic:
            self.on_clip(msg.topic, bytes(msg.payload))  # refusals are counted by the receiver
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)
            return
        try:
            s = self.settings
            checker = None if self.verify is not None else self.signatures
            item = classify(
                msg.topic, bytes(msg.payload), s.topic_prefix, ack, time.time(), s.max_clock_skew_s, checker
            )
        except Exception:  # a validator bug must not stop ingest
            log.exception("unexpected error validating a message on %s", msg.topic[:200])
            item = Rejection("internal_error", "see the traceback above")
        if isinstance(item, Rejection):
            self.counters.refuse(msg.topic, item, bytes(msg.payload))
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)
            return
        if self.verify is not None:  # it counts what it passes on
            self.verify(item, bytes(msg.payload), msg.topic, self._stopping)
            return
        self.counters.accept(type(item).__name__)
        while not self._stopping.is_set():
            try:
                self.out.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
