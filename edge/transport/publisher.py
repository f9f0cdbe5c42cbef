"""The MQTT publisher: drains the durable outbox to the broker with QoS 1 and reports node status.

paho-mqtt 2.x runs the network loop in its own thread (`connect_async` + `loop_start`) and reconnects
with capped exponential backoff (`reconnect_delay_set`). This module adds one drain thread that hands
stored events to paho in order, at most `window` events at a time, and deletes an outbox row only when
the broker's PUBACK for every message of that event (snapshot JPEG first, then the JSON) has arrived.

Delivery is at least once. While the process lives, paho keeps unacknowledged QoS 1 messages and sends
them again (DUP) after a reconnect; after a restart the drain starts again from the oldest stored row. A
message whose PUBACK was lost is therefore received twice, and the receiver deduplicates by `event_id`.

Bad credentials (CONNACK "bad user name or password" / "not authorized") are logged once, clearly, and
the client stops instead of hammering the broker; it tries again, with the secret read afresh, only
after `auth_retry_s` (default 15 min), so a fixed password file heals the node without a restart. Every
other failure is retried with backoff. paho callbacks never raise: they record what happened and wake
the drain thread, which does the SQLite work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from common.mqttclient import AUTH_FAILURES, new_client
from contract.commands import Command, CommandError, parse_command
from contract.topics import RESERVED_NODE_IDS, command_filter, topic_ack, topic_stats, topic_status
from edge.config import NodeMqttSettings
from edge.records import Event
from edge.transport.delivery import Awaiting, Watermark, parse_watermark
from edge.transport.outbox import Outbox, OutboxItem, OutboxStats
from edge.transport.wire import encode, status_payload

log = logging.getLogger(__name__)

_QUEUED_OK = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)


@dataclass(frozen=True, slots=True)
class PublisherStats:
    connected: bool
    auth_failed: bool
    inflight: int
    sent: int
    acked: int
    rejected: int
    connects: int
    disconnects: int
    outbox: OutboxStats
    awaiting: int = 0  # delivery aggregator: PUBACKed, not yet confirmed stored by the aggregator


@dataclass(slots=True)
class _Inflight:
    seq: int
    mids: set[int] = field(default_factory=set)
    rejected: bool = False
    t_sent: float = 0.0


def _reason_value(reason: ReasonCode | int) -> int:
    return int(reason.value) if isinstance(reason, ReasonCode) else int(reason)


class Publisher:
    """Publishes one node's outbox; `start()`, `wake()` after each put, `stop(timeout)` at the end."""

    def __init__(
        self,
        node_id: str,
        settings: NodeMqttSettings,
        outbox: Outbox,
        *,
        window: int = 32,
        auth_retry_s: float = 900.0,
        on_ack: Callable[[int, float], None] | None = None,
        on_command: Callable[[Command], None] | None = None,
        cameras: frozenset[str] = frozenset(),
    ) -> None:
        if node_id in RESERVED_NODE_IDS:
            raise ValueError(
                f"node id {node_id!r} is reserved: {settings.topic_prefix}/{node_id}/# carries alerts"
            )
        if outbox.topic_prefix != settings.topic_prefix:
            raise ValueError(
                f"outbox topic prefix {outbox.topic_prefix!r} "
                f"differs from mqtt.topic_prefix {settings.topic_prefix!r}"
            )
        if settings.username is not None and settings.username != node_id:
            log.warning(
                "mqtt username %r differs from node id %r: the shipped ACL will refuse its topics",
                settings.username,
                node_id,
            )
        self.node_id = node_id
        self.settings = settings
        self.outbox = outbox
        self.window = window
        self.auth_retry_s = auth_retry_s
        self._on_ack = on_ack
        self._on_command = on_command
        self._cameras = cameras
        self._command_topic = command_filter(settings.topic_prefix, node_id)
        # The shipped broker replaces the client id with the user name (use_username_as_clientid), so with
        # a user name we use it as the id too: what we log and what the broker knows are the same.
        self.client_id = settings.username or settings.client_id or f"roadwatch-edge-{node_id}"
        self._status_topic = topic_status(settings.topic_prefix, node_id)
        self._stats_topic = topic_stats(settings.topic_prefix, node_id)
        self._ack_topic = topic_ack(settings.topic_prefix, node_id)
        # end to end (edge/transport/delivery.py): PUBACKed events wait here for the aggregator's watermark
        self._awaiting = Awaiting(settings.ack_timeout_s) if settings.delivery == "aggregator" else None
        self._marks: deque[Watermark] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._acks: deque[tuple[int, bool, str]] = deque()
        self._inflight: dict[int, _Inflight] = {}
        self._mid_seq: dict[int, int] = {}
        self._cursor = 0
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._stop_deadline = 0.0
        self._connected = False
        self._auth_failed_at: float | None = None
        self._auth_logged = False
        self._last_fail_reason = ""
        self._sent = self._acked = self._rejected = self._connects = self._disconnects = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background and start draining; raises ValueError when the password is missing."""
        self._client = self._make_client()
        self._thread = threading.Thread(target=self._run, name=f"publisher-{self.node_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what the broker accepts within `timeout`, publish `stopped`, disconnect.

        Events that are still unacknowledged stay in the outbox for the next start.
        """
        self._stop_deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        client = self._client
        if client is None:
            return
        if self._connected:
            info = client.publish(
                self._status_topic,
                encode(status_payload(self.node_id, "stopped", time.time())),
                qos=1,
                retain=True,
            )
            try:
                info.wait_for_publish(max(0.5, min(3.0, self._stop_deadline - time.monotonic())))
            except (RuntimeError, ValueError):
                log.warning("node %s: could not publish the stopped status", self.node_id)
        client.disconnect()
        client.loop_stop()
        self._connected = False
        log.info(
            "node %s: publisher stopped, %d events left in the outbox", self.node_id, self.outbox.depth()
        )

    def wake(self) -> None:
        """Tell the drain thread that the outbox has something new."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def auth_failed(self) -> bool:
        return self._auth_failed_at is not None

    def stats(self) -> PublisherStats:
        with self._lock:
            inflight = len(self._inflight)
        return PublisherStats(
            connected=self._connected,
            auth_failed=self.auth_failed,
            inflight=inflight,
            sent=self._sent,
            acked=self._acked,
            rejected=self._rejected,
            connects=self._connects,
            disconnects=self._disconnects,
            outbox=self.outbox.stats(),
            awaiting=len(self._awaiting.pubacked) if self._awaiting is not None else 0,
        )

    def publish_stats(self, payload: Mapping[str, Any]) -> bool:
        """Best-effort stats (QoS 0, never stored): returns False when not connected."""
        client = self._client
        if client is None or not self._connected:
            return False
        info = client.publish(self._stats_topic, encode(payload), qos=0)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def publish_wait(self, topic: str, payload: bytes, timeout_s: float = 30.0) -> bool:
        """One QoS 1 message outside the outbox (clip uploads): True once the broker acknowledged it."""
        client = self._client
        if client is None or not self._connected:
            return False
        info = client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    # ------------------------------------------------------------------ paho client

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = new_client(s, self.client_id)
        client.max_inflight_messages_set(2 * self.window + 8)
        self._set_will(client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        client.loop_start()
        return client

    def _set_will(self, client: mqtt.Client) -> None:
        offline = encode(status_payload(self.node_id, "offline", time.time()))
        client.will_set(self._status_topic, offline, qos=1, retain=True)

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            code = _reason_value(reason)
            if code >= 0x80:
                self._connect_refused(client, code, str(reason))
                return
            self._connected = True
            self._connects += 1
            self._auth_logged = False
            self._last_fail_reason = ""
            log.info("node %s: connected to %s:%d", self.node_id, self.settings.host, self.settings.port)
            client.publish(
                self._status_topic,
                encode(status_payload(self.node_id, "online", time.time())),
                qos=1,
                retain=True,
            )
            if self._on_command is not None:
                client.subscribe(self._command_topic, qos=1)
            if self._awaiting is not None:
                client.subscribe(self._ack_topic, qos=1)
            self._wake.set()
        except Exception:
            log.exception("node %s: error in on_connect", self.node_id)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """A command from the station; a bad one is logged and dropped (nothing raises in a callback)."""
        if msg.topic == self._ack_topic:
            mark = parse_watermark(bytes(msg.payload), self.node_id, time.monotonic())
            if mark is not None:
                self._marks.append(mark)
                self._wake.set()
            return
        if self._on_command is None or msg.retain:  # a retained command would replay at every connect
            return
        try:
            command = parse_command(
                msg.topic, bytes(msg.payload), self.settings.topic_prefix, self.node_id, self._cameras
            )
        except CommandError as exc:
            log.warning("node %s: command refused: %s", self.node_id, exc)
            return
        try:
            self._on_command(command)
        except Exception:
            log.exception("node %s: command %s failed", self.node_id, command.command)

    def _connect_refused(self, client: mqtt.Client, code: int, reason: str) -> None:
        if code in AUTH_FAILURES:
            self._auth_failed_at = time.monotonic()
            client.disconnect()  # ends paho's loop thread: no reconnect storm
            if not self._auth_logged:
                self._auth_logged = True
                log.error(
                    "node %s: broker %s:%d refused the connection: %s. Check mqtt.username and the password "
                    "source; not retrying for %.0f s",
                    self.node_id,
                    self.settings.host,
                    self.settings.port,
                    reason,
                    self.auth_retry_s,
                )
            else:
                log.debug("node %s: still refused: %s", self.node_id, reason)
        elif reason != self._last_fail_reason:
            self._last_fail_reason = reason
            log.warning("node %s: broker refused the connection: %s; retrying", self.node_id, reason)

    def _on_disconnect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            # The will is fixed at CONNECT: refresh its timestamp for the next session.
            self._set_will(client)
            if self._connected:
                self._disconnects += 1
                if not self._stopping:
                    log.warning(
                        "node %s: disconnected from broker (%s); will reconnect", self.node_id, reason
                    )
            self._connected = False
        except Exception:
            log.exception("node %s: error in on_disconnect", self.node_id)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        reason = "cannot reach broker"
        if reason != self._last_fail_reason:
            self._last_fail_reason = reason
            log.warning(
                "node %s: cannot connect to broker %s:%d (network, or TLS: check mqtt.tls); retrying with backoff",
                self.node_id,
                self.settings.host,
                self.settings.port,
            )

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            code = _reason_value(reason)
            self._acks.append((mid, code >= 0x80, str(reason)))
            self._wake.set()
        except Exception:
            log.exception("node %s: error in on_publish", self.node_id)

    # ------------------------------------------------------------------ drain thread

    def _run(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._take_acks()
                self._settle()
                if self._stopping and (
                    self._flushed() or not self._connected or time.monotonic() >= self._stop_deadline
                ):
                    return
                if self._auth_failed_at is not None:
                    self._maybe_retry_auth()
                elif self._connected:
                    self._fill_window()
            except Exception:
                log.exception("node %s: publisher drain loop error", self.node_id)
                time.sleep(0.5)

    def _flushed(self) -> bool:
        """Nothing in flight and nothing left to hand out (rows the broker rejected wait for a restart)."""
        with self._lock:
            if self._inflight:
                return False
        return not self.outbox.pending(1, after_seq=self._cursor)

    def _take_acks(self) -> None:
        done: list[int] = []
        now = time.monotonic()
        with self._lock:
            while self._acks:
                mid, failed, reason = self._acks.popleft()
                seq = self._mid_seq.pop(mid, None)
                if seq is None:  # status messages, or a client that was replaced
                    continue
                item = self._inflight.get(seq)
                if item is None:
                    continue
                item.mids.discard(mid)
                if failed:
                    item.rejected = True
                    log.error(
                        "node %s: broker rejected event seq %d: %s; kept in the outbox for the next start",
                        self.node_id,
                        seq,
                        reason,
                    )
                if not item.mids:
                    del self._inflight[seq]
                    if item.rejected:
                        self._rejected += 1
                    else:
                        done.append(seq)
                        if self._on_ack is not None:
                            self._on_ack(seq, now - item.t_sent)
        if done and self._awaiting is not None:
            self._awaiting.add(done, now)  # the broker has it; the outbox keeps it until it is stored
        elif done:
            self.outbox.ack(done)
            self._acked += len(done)

    def _settle(self) -> None:
        """Delete what the aggregator's watermarks confirm; publish again what stays unconfirmed too long."""
        awaiting = self._awaiting
        if awaiting is None:
            return
        while self._marks:
            done = awaiting.confirm(self._marks.popleft(), self.outbox.stats().seq_next)
            if done:
                self.outbox.ack(done)
                self._acked += len(done)
        client = self._client
        if client is None or not self._connected:
            return
        for seq in awaiting.due(time.monotonic()):
            item = next(iter(self.outbox.pending(1, after_seq=seq - 1)), None)
            if item is None or item.seq != seq:
                continue  # dropped by the outbox policy meanwhile
            log.info("node %s: event seq %d not confirmed stored; publishing it again", self.node_id, seq)
            if not self._send(client, item):
                awaiting.add([seq], time.monotonic())

    def _fill_window(self) -> None:
        client = self._client
        if client is None:
            return
        with self._lock:
            room = self.window - len(self._inflight)
        if room <= 0:
            return
        for item in self.outbox.pending(room, after_seq=self._cursor):
            if not self._connected or not self._send(client, item):
                return
            self._cursor = item.seq

    def _send(self, client: mqtt.Client, item: OutboxItem) -> bool:
        """Hand one event (snapshot first) to paho; False when paho's queue is full."""
        entry = _Inflight(item.seq, t_sent=time.monotonic())
        infos = []
        if item.snapshot is not None and item.snapshot_topic is not None:
            infos.append(client.publish(item.snapshot_topic, item.snapshot, qos=1))
        infos.append(client.publish(item.topic, item.payload, qos=1))
        with self._lock:
            for info in infos:
                if info.rc not in _QUEUED_OK:
                    log.warning(
                        "node %s: paho refused event seq %d (%s); will retry", self.node_id, item.seq, info.rc
                    )
                    self._forget(entry)
                    return False
                entry.mids.add(info.mid)
                self._mid_seq[info.mid] = item.seq
            self._inflight[item.seq] = entry
        self._sent += 1
        return True

    def _forget(self, entry: _Inflight) -> None:
        for mid in entry.mids:
            self._mid_seq.pop(mid, None)

    def _maybe_retry_auth(self) -> None:
        failed_at = self._auth_failed_at
        if failed_at is None or time.monotonic() - failed_at < self.auth_retry_s:
            return
        old = self._client
        if old is not None:
            old.loop_stop()
        with self._lock:  # the new client starts a new session: resend everything still stored
            self._inflight.clear()
            self._mid_seq.clear()
            self._acks.clear()
            self._cursor = 0
        self._auth_failed_at = None
        try:
            self._client = self._make_client()
        except ValueError as exc:
            log.error("node %s: %s", self.node_id, exc)
            self._auth_failed_at = time.monotonic()


class OutboxSink:
    """The pipeline's event sink: stores (event, jpeg) in the outbox and wakes the publisher."""

    def __init__(self, outbox: Outbox, publisher: Publisher | None = None) -> None:
        self.outbox = outbox
        self.publisher = publisher

    def put(self, event: Event, jpeg: bytes | None) -> None:
        self.outbox.put(event, jpeg)
        if self.publisher is not None:
            self.publisher.wake()
