"""The MQTT publisher: drains the durable outbox to the broker with QoS 1.

The connection itself (paho client, status, commands, auth back-off) is edge/transport/session.py; this
module adds one drain thread that hands stored events to paho in order, at most `window` events at a
time, and deletes an outbox row only when the broker's PUBACK for every message of that event (snapshot
JPEG first, then the JSON) has arrived, or, with `delivery: aggregator`, when the aggregator's watermark
confirms it stored the event (edge/transport/delivery.py).

Delivery is at least once. While the process lives, paho keeps unacknowledged QoS 1 messages and sends
them again (DUP) after a reconnect; after a restart the drain starts again from the oldest stored row. A
message whose PUBACK was lost is therefore received twice, and the receiver deduplicates by `event_id`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from contract.commands import Command
from edge.config import NodeMqttSettings
from edge.records import Event
from edge.transport.delivery import Awaiting, Watermark, parse_watermark
from edge.transport.outbox import Outbox, OutboxItem, OutboxStats
from edge.transport.session import NodeSession, reason_value

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


class Publisher(NodeSession):
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
        super().__init__(node_id, settings, auth_retry_s=auth_retry_s, on_command=on_command, cameras=cameras)
        if outbox.topic_prefix != settings.topic_prefix:
            raise ValueError(
                f"outbox topic prefix {outbox.topic_prefix!r} "
                f"differs from mqtt.topic_prefix {settings.topic_prefix!r}"
            )
        self.outbox = outbox
        self.window = window
        self._on_ack = on_ack
        # end to end (edge/transport/delivery.py): PUBACKed events wait here for the aggregator's watermark
        self._awaiting = Awaiting(settings.ack_timeout_s) if settings.delivery == "aggregator" else None
        self._marks: deque[Watermark] = deque()
        self._lock = threading.Lock()
        self._acks: deque[tuple[int, bool, str]] = deque()
        self._inflight: dict[int, _Inflight] = {}
        self._mid_seq: dict[int, int] = {}
        self._cursor = 0
        self._thread: threading.Thread | None = None
        self._stop_deadline = 0.0
        self._sent = self._acked = self._rejected = 0

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
        if self._client is None:
            return
        self._close(self._stop_deadline)
        log.info(
            "node %s: publisher stopped, %d events left in the outbox", self.node_id, self.outbox.depth()
        )

    def wake(self) -> None:
        """Tell the drain thread that the outbox has something new."""
        self._wake.set()

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

    # ------------------------------------------------------------------ session hooks and PUBACKs

    def _configure(self, client: mqtt.Client) -> None:
        client.max_inflight_messages_set(2 * self.window + 8)
        client.on_publish = self._on_publish

    def _on_session(self, client: mqtt.Client) -> None:
        if self._awaiting is not None:
            client.subscribe(self._ack_topic, qos=1)

    def _on_ack_message(self, payload: bytes) -> None:
        mark = parse_watermark(payload, self.node_id, time.monotonic())
        if mark is not None:
            self._marks.append(mark)
            self._wake.set()

    def _reset_session(self) -> None:
        with self._lock:  # the new client starts a new session: resend everything still stored
            self._inflight.clear()
            self._mid_seq.clear()
            self._acks.clear()
            self._cursor = 0

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            code = reason_value(reason)
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


class OutboxSink:
    """The pipeline's event sink: stores (event, jpeg) in the outbox and wakes the publisher."""

    def __init__(self, outbox: Outbox, publisher: Publisher | None = None) -> None:
        self.outbox = outbox
        self.publisher = publisher

    def put(self, event: Event, jpeg: bytes | None) -> None:
        self.outbox.put(event, jpeg)
        if self.publisher is not None:
            self.publisher.wake()
