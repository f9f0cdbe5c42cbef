"""The writer thread: drains the ingest queue in batches into the store, then announces what is new.

One thread owns every write of ingested data, so batching is simple (one transaction per batch) and
health state needs no locks. After a batch commits, its MQTT messages are acknowledged, new events go to
the live feed and to forwarding. An event that names a snapshot which has not arrived yet is held back
from the live feed for up to `snapshot_wait_s`, so the dashboard shows it once, with its thumbnail; a
snapshot arriving later still re-announces the event (clients upsert by event_id).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from central.db import is_unavailable
from central.forward import Forwarder
from central.health import HealthMonitor
from central.ingest import Ack, EventItem, Item, SnapshotItem, StatsItem, StatusItem
from central.live import LiveHub
from central.metrics import LagTracker, NodeBoard
from central.store import EventRow, Store

log = logging.getLogger(__name__)

APPLY_ATTEMPTS = 3  # for errors that are not the database being away
MAX_RETRY_DELAY_S = 5.0


class Writer:
    def __init__(
        self,
        store: Store,
        inbox: queue.Queue[Item],
        hub: LiveHub,
        health: HealthMonitor,
        *,
        forwarder: Forwarder | None,
        ack: Callable[[list[Ack]], None],
        batch_max: int = 500,
        health_interval_s: float = 5.0,
        retention: Callable[[float], None] | None = None,
        retention_interval_s: float = 600.0,
        snapshot_wait_s: float = 1.0,
        heartbeat: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.hub = hub
        self.health = health
        self.forwarder = forwarder
        self.ack = ack
        self.batch_max = batch_max
        self.health_interval_s = health_interval_s
        self.retention = retention
        self.retention_interval_s = retention_interval_s
        self.snapshot_wait_s = snapshot_wait_s
        self.heartbeat = heartbeat  # the systemd watchdog: pinged while this loop makes progress
        self.stored_events = 0
        self.errors = 0
        self.write_failure: str | None = None  # why the last batch did not commit; /healthz fails meanwhile
        self.duplicates = 0  # events received again (redelivery, node resend) and dropped
        self.stored_snapshots = 0
        self.lag = LagTracker()  # ingest lag of stored edge events, for the metrics endpoint
        self.nodes = NodeBoard()  # latest status and stats of every node, for the metrics endpoint
        self.on_stored: Callable[[list[EventRow], float], None] | None = (
            None  # benchmarks measure latency here
        )
        self._pending: dict[str, float] = {}  # event id -> announce deadline while its snapshot is awaited
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="central-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Drain what is queued, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        next_health = time.monotonic() + self.health_interval_s
        next_retention = time.monotonic() + min(5.0, self.retention_interval_s)
        while True:
            try:
                first = self.inbox.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    return
                first = None
            batch: list[Item] = [] if first is None else [first]
            while batch and len(batch) < self.batch_max:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            mono = time.monotonic()
            if self.heartbeat is not None:
                self.heartbeat()
            if batch:
                self._apply_with_retry(batch)
            try:
                self._flush_pending(time.time())
                if mono >= next_health:
                    next_health = mono + self.health_interval_s
                    self.raise_alerts(time.time())
                if self.retention is not None and mono >= next_retention:
                    next_retention = mono + self.retention_interval_s
                    self.retention(time.time())
            except Exception:  # a worker loop logs, counts and goes on
                self.errors += 1
                log.exception("writer housekeeping failed")

    def _apply_with_retry(self, batch: list[Item]) -> None:
        """Apply a batch; acknowledged only after its commit.

        While the database is away (server down, locked, disk full) the batch is retried until it
        commits, with capped backoff: nothing is acknowledged meanwhile, so the broker's flow control
        (MQTT 5 receive maximum) holds further messages in our session instead of letting them through to
        fail. The watchdog keeps being fed: waiting for the database is not a hang. Any other error is
        retried a few times, then the batch is left unacknowledged (the broker delivers it again after
        the next reconnect) so one bad batch cannot stop ingest.
        """
        attempt = 0
        while True:
            try:
                self.apply(batch, time.time())
                self.write_failure = None
                if attempt >= APPLY_ATTEMPTS:
                    log.warning("store is back: a batch of %d messages committed", len(batch))
                return
            except Exception as exc:  # a worker loop logs, counts and goes on
                self.errors += 1
                self.write_failure = f"{type(exc).__name__}: {exc}"
                attempt += 1
                waiting = is_unavailable(exc) and not self._stop.is_set()
                if attempt <= APPLY_ATTEMPTS:
                    log.exception("writer failed on a batch of %d messages (attempt %d)", len(batch), attempt)
                elif waiting:
                    log.error(
                        "store unavailable (%s); batch of %d held, attempt %d", exc, len(batch), attempt
                    )
                if attempt >= APPLY_ATTEMPTS and not waiting:
                    break
            if self.heartbeat is not None:
                self.heartbeat()
            self._stop.wait(min(0.2 * 2 ** (attempt - 1), MAX_RETRY_DELAY_S))
        log.error(
            "gave up on a batch of %d messages; unacknowledged, the broker delivers them again", len(batch)
        )

    def apply(self, batch: list[Item], now: float) -> None:
        """Store one batch, acknowledge it, announce what is new."""
        events = [i.row for i in batch if isinstance(i, EventItem)]
        snaps = [i for i in batch if isinstance(i, SnapshotItem)]
        links = [(s.event_id, self.store.snapshots.put(s.data), len(s.data), s.received_epoch) for s in snaps]
        new = self.store.insert_events(events)
        relinked = self.store.link_snapshots(links)
        self.store.track_sequences([(r.node, r.seq) for r in new], now)
        for item in batch:
            if isinstance(item, StatusItem):
                self.store.upsert_node(item.node, item.state, item.received_epoch, None)
                self.health.on_status(item.node, item.state, item.received_epoch)
                self.nodes.on_status(item.node, item.state)
            elif isinstance(item, StatsItem):
                self.store.upsert_node(item.node, None, item.received_epoch, item.stats)
                self.health.on_stats(item.node, item.stats, item.received_epoch)
                self.nodes.on_stats(item.node, item.stats)
        self.ack([i.ack for i in batch if i.ack is not None])
        self.stored_events += len(new)
        self.duplicates += len(events) - len(new)
        self.stored_snapshots += len(snaps)
        self.lag.observe([now - r.ts_epoch for r in new], now)
        if self.on_stored is not None:
            self.on_stored(new, now)
        linked_now = {link[0] for link in links}
        for row in new:
            if (
                row.payload.get("snapshot")
                and row.event_id not in linked_now
                and not self.store.has_snapshot(row.event_id)
            ):
                self._pending[row.event_id] = now + self.snapshot_wait_s
                continue
            self._announce(row.event_id, forward=True)
        new_ids = {r.event_id for r in new}
        for event_id in relinked:
            if event_id in new_ids:
                continue
            was_pending = self._pending.pop(event_id, None) is not None
            self._announce(event_id, forward=was_pending)
        for item in batch:
            if isinstance(item, (StatusItem, StatsItem)):
                node = self.store.node(item.node)
                if node is not None:
                    self.hub.publish("node", node)

    def store_central_events(self, rows: list[EventRow]) -> None:
        for row in self.store.insert_events(rows):
            log.warning("%s: %s", row.kind, row.payload["texts"].get("en", ""))
            self._announce(row.event_id, forward=True)

    def raise_alerts(self, now: float) -> None:
        self.store_central_events(self.health.check(now))

    def _flush_pending(self, now: float) -> None:
        due = [eid for eid, deadline in self._pending.items() if deadline <= now]
        for event_id in due:
            del self._pending[event_id]
            self._announce(event_id, forward=True)

    def _announce(self, event_id: str, forward: bool) -> None:
        forwarding = forward and self.forwarder is not None and bool(self.forwarder.settings.rules)
        if not forwarding and self.hub.client_count == 0:
            return  # nobody listens: skip the read
        event = self.store.get_event(event_id)
        if event is None:
            return
        self.hub.publish("event", event)
        if forward and self.forwarder is not None:
            try:
                self.forwarder.consider(event)
            except Exception:
                log.exception("forwarding event %s failed", event_id)
