"""One node's MQTT session: the paho client, its connection state, status messages and station commands.

paho-mqtt 2.x runs the network loop in its own thread (`connect_async` + `loop_start`) and reconnects
with capped exponential backoff (`reconnect_delay_set`). Bad credentials (CONNACK "bad user name or
password" / "not authorized") are logged once, clearly, and the client stops instead of hammering the
broker; it tries again, with the secret read afresh, only after `auth_retry_s` (default 15 min), so a
fixed password file heals the node without a restart. Every other failure is retried with backoff.

paho callbacks never raise: they record what happened and set `_wake`, which the publisher's drain
thread (edge/transport/publisher.py, a subclass) waits on. This module knows nothing about the outbox;
the subclass adds delivery through three hooks: `_configure`, `_on_session`, `_on_ack_message`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from common.mqttclient import AUTH_FAILURES, new_client
from contract.commands import Command, CommandError, parse_command
from contract.topics import RESERVED_NODE_IDS, command_filter, topic_ack, topic_stats, topic_status
from edge.config import NodeMqttSettings
from edge.transport.wire import encode, status_payload

# The publisher's logger: the session is half of it, and operators (and tests) filter on one name.
log = logging.getLogger("edge.transport.publisher")


def reason_value(reason: ReasonCode | int) -> int:
    return int(reason.value) if isinstance(reason, ReasonCode) else int(reason)


class NodeSession:
    """The connection half of the publisher: connect, will and status, commands, auth back-off."""

    def __init__(
        self,
        node_id: str,
        settings: NodeMqttSettings,
        *,
        auth_retry_s: float = 900.0,
        on_command: Callable[[Command], None] | None = None,
        cameras: frozenset[str] = frozenset(),
    ) -> None:
        if node_id in RESERVED_NODE_IDS:
            raise ValueError(
                f"node id {node_id!r} is reserved: {settings.topic_prefix}/{node_id}/# carries alerts"
            )
        if settings.username is not None and settings.username != node_id:
            log.warning(
                "mqtt username %r differs from node id %r: the shipped ACL will refuse its topics",
                settings.username,
                node_id,
            )
        self.node_id = node_id
        self.settings = settings
        self.auth_retry_s = auth_retry_s
        self._on_command = on_command
        self._cameras = cameras
        self._command_topic = command_filter(settings.topic_prefix, node_id)
        # The shipped broker replaces the client id with the user name (use_username_as_clientid), so with
        # a user name we use it as the id too: what we log and what the broker knows are the same.
        self.client_id = settings.username or settings.client_id or f"roadwatch-edge-{node_id}"
        self._status_topic = topic_status(settings.topic_prefix, node_id)
        self._stats_topic = topic_stats(settings.topic_prefix, node_id)
        self._ack_topic = topic_ack(settings.topic_prefix, node_id)
        self._wake = threading.Event()
        self._client: mqtt.Client | None = None
        self._stopping = False
        self._connected = False
        self._auth_failed_at: float | None = None
        self._auth_logged = False
        self._last_fail_reason = ""
        self._connects = self._disconnects = 0

    # ------------------------------------------------------------------ hooks for the publisher

    def _configure(self, client: mqtt.Client) -> None:
        """Set what delivery needs on a new client before it connects."""

    def _on_session(self, client: mqtt.Client) -> None:
        """A (re)connected session: subscribe to what delivery needs."""

    def _on_ack_message(self, payload: bytes) -> None:
        """A message on the node's ack topic."""

    def _reset_session(self) -> None:
        """A new client replaces the old one (after an auth back-off): forget per-session state."""

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def auth_failed(self) -> bool:
        return self._auth_failed_at is not None

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

    def _close(self, deadline: float) -> None:
        """Publish the retained `stopped` status (waiting until `deadline` at most) and disconnect."""
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
                info.wait_for_publish(max(0.5, min(3.0, deadline - time.monotonic())))
            except (RuntimeError, ValueError):
                log.warning("node %s: could not publish the stopped status", self.node_id)
        client.disconnect()
        client.loop_stop()
        self._connected = False

    # ------------------------------------------------------------------ paho client

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = new_client(s, self.client_id)
        self._configure(client)
        self._set_will(client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
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
            code = reason_value(reason)
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
            self._on_session(client)
            self._wake.set()
        except Exception:
            log.exception("node %s: error in on_connect", self.node_id)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """A command from the station; a bad one is logged and dropped (nothing raises in a callback)."""
        if msg.topic == self._ack_topic:
            self._on_ack_message(bytes(msg.payload))
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

    def _maybe_retry_auth(self) -> None:
        failed_at = self._auth_failed_at
        if failed_at is None or time.monotonic() - failed_at < self.auth_retry_s:
            return
        old = self._client
        if old is not None:
            old.loop_stop()
        self._reset_session()
        self._auth_failed_at = None
        try:
            self._client = self._make_client()
        except ValueError as exc:
            log.error("node %s: %s", self.node_id, exc)
            self._auth_failed_at = time.monotonic()
