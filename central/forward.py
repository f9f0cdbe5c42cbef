"""Forwarding: rules pick events and send them to the police MQTT alert topic and to HTTP webhooks.

A rule matches on kind, camera, class, phase and local time of day, and is throttled per
(rule, node/camera, event rule) window, e.g. one crowding alert per zone per 5 minutes. Webhook calls
go through a durable queue in the store: a station that loses its uplink keeps its alerts, retries with
exponential backoff, and after `max_attempts` moves the call to a dead-letter state an admin can see
and requeue through the API. The body is signed: `X-Roadwatch-Signature: sha256=<hex HMAC-SHA256>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from central.config import ForwardingSettings, ForwardRule, TimeWindow, Webhook
from central.forwardstate import (
    due_calls,
    enqueue_webhooks,
    forget_throttles,
    load_throttles,
    mark_dead,
    mark_delivered,
    mark_retry,
    save_throttle,
)
from central.ingest import Publish
from central.store import Store
from contract.times import iso_from_epoch, parse_ts

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Roadwatch-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_window(window: TimeWindow, local: datetime) -> bool:
    """Whether a local time lies in [from, to); a window with from > to wraps midnight."""
    now, start, end = local.hour * 60 + local.minute, _minutes(window.start), _minutes(window.end)
    return start <= now < end if start <= end else (now >= start or now < end)


def rule_matches(rule: ForwardRule, event: dict[str, Any], tz: ZoneInfo) -> bool:
    if rule.kinds and event["kind"] not in rule.kinds:
        return False
    if (
        rule.cameras
        and event["camera"] not in rule.cameras
        and f"{event['node']}/{event['camera']}" not in rule.cameras
    ):
        return False
    if rule.classes and not set(rule.classes) & set(event.get("classes") or ()):
        return False
    if rule.phases and event["phase"] not in rule.phases:
        return False
    return rule.time_of_day is None or in_window(rule.time_of_day, parse_ts(event["ts"]).astimezone(tz))


def alert_payload(rule: str, event: dict[str, Any], now: float) -> dict[str, Any]:
    """The documented alert body (docs/central.md), shared by the MQTT topic and the webhooks."""
    return {
        "v": 1,
        "alert_id": str(uuid.uuid4()),
        "rule": rule,
        "sent_at": iso_from_epoch(now),
        "kind": event["kind"],
        "node": event["node"],
        "camera": event["camera"],
        "ts": event["ts"],
        "local_time": event.get("local_time"),
        "texts": event.get("texts") or {},
        "snapshot_url": event.get("snapshot_url"),
        "event": event,
    }


class Forwarder:
    """Decides what to forward; called from the writer thread for every newly stored event."""

    def __init__(
        self, settings: ForwardingSettings, store: Store, prefix: str, tz: str, publish: Publish
    ) -> None:
        self.settings = settings
        self.store = store
        self.prefix = prefix
        self.tz = ZoneInfo(tz)
        self.publish = publish
        self._last = load_throttles(store)
        self.sent_mqtt = 0  # handed to the MQTT client, including those queued during an outage
        self.queued_mqtt = 0  # published while the broker was away: paho sends them on reconnect
        self.throttled = 0

    def consider(self, event: dict[str, Any], now: float | None = None) -> int:
        """Forward `event` by every matching rule; returns how many rules fired."""
        now = time.time() if now is None else now
        fired = 0
        for rule in self.settings.rules:
            if not rule_matches(rule, event, self.tz):
                continue
            key = (rule.name, event["node"], event["camera"], event.get("rule") or "")
            if rule.throttle_s > 0:
                last = self._last.get(key)
                if last is not None and now - last < rule.throttle_s:
                    self.throttled += 1
                    continue
                self._last[key] = now
                save_throttle(self.store, key, now)
            fired += 1
            body = json.dumps(alert_payload(rule.name, event, now), ensure_ascii=False, separators=(",", ":"))
            if rule.mqtt:
                topic = f"{self.prefix}/alerts/{event['node']}/{event['camera']}/{event['kind']}"
                result = self.publish(topic, body.encode("utf-8"))
                if result == "failed":
                    log.error("alert %s for event %s could not be published", rule.name, event["event_id"])
                else:
                    self.sent_mqtt += 1
                if result == "queued":
                    self.queued_mqtt += 1
                    log.warning(
                        "alert %s for event %s queued: broker not connected, sent when it is back",
                        rule.name,
                        event["event_id"],
                    )
            if rule.webhooks:
                enqueue_webhooks(
                    self.store, rule.webhooks, rule=rule.name, event_id=event["event_id"], body=body, now=now
                )
        if len(self._last) > 10000:  # forget throttle keys of long-quiet cameras
            horizon = max((r.throttle_s for r in self.settings.rules), default=0.0)
            self._last = {k: t for k, t in self._last.items() if now - t < horizon}
            forget_throttles(self.store, now - horizon)
        return fired


class WebhookWorker:
    """Delivers queued webhook calls in its own thread; survives receivers that are down for days."""

    def __init__(self, store: Store, hooks: dict[str, Webhook], poll_s: float = 0.2) -> None:
        self.store = store
        self.hooks = hooks
        self.poll_s = poll_s
        self._secrets = {name: (h.secret.resolve() if h.secret else None) for name, h in hooks.items()}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.hooks:
            return
        self._thread = threading.Thread(target=self._run, name="central-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.deliver_due(time.time())
            except Exception:  # a worker loop logs and goes on
                log.exception("webhook worker failed; retrying")
                done = 0
            if done == 0:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def deliver_due(self, now: float, limit: int = 20) -> int:
        """Try every call that is due; returns how many were attempted."""
        calls = due_calls(self.store, now, limit)
        for call in calls:
            hook = self.hooks.get(call.webhook)
            error = (
                "webhook no longer configured"
                if hook is None
                else self._post(call.webhook, hook, call.body.encode("utf-8"))
            )
            self._record(call.item_id, hook, call.attempts + 1, error)
        return len(calls)

    def _post(self, name: str, hook: Webhook, body: bytes) -> str | None:
        headers = {"Content-Type": "application/json", "User-Agent": "roadwatch-central"}
        secret = self._secrets.get(name)
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=hook.timeout_s) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        return None if 200 <= status < 300 else f"HTTP {status}"

    def _record(self, item_id: int, hook: Webhook | None, attempts: int, error: str | None) -> None:
        now = time.time()
        if error is None:
            mark_delivered(self.store, item_id, attempts, now)
        elif hook is None or attempts >= hook.max_attempts:
            log.error("webhook call %d dead after %d attempts: %s", item_id, attempts, error)
            mark_dead(self.store, item_id, attempts, error, now)
        else:
            delay = min(hook.backoff_s * 2 ** (attempts - 1), hook.backoff_max_s)
            log.warning("webhook call %d failed (%s); retry %d in %.1f s", item_id, error, attempts, delay)
            mark_retry(self.store, item_id, attempts, error, now + delay, now)
