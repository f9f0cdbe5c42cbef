"""The writer thread: drains the ingest queue in batches into the store and acknowledges what committed.

One thread owns every write of ingested data, so batching is simple (one transaction per batch) and
health state needs no locks. After a batch commits, its MQTT messages are acknowledged and the
`Announcer` tells the live feed and forwarding. Housekeeping that writes (retention, health sweeps) is
timed by the service's scheduler and handed in with `submit`, so it runs here, between batches, and
never races an insert; the scheduler also reads `last_beat` to feed the systemd watchdog only while this
loop makes progress.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable

from central.acks import AckPublisher
from central.announce import Announcer
from central.batching import fill_batch
from central.binding import SnapshotBinder
from central.db import is_unavailable
from central.health import HealthMonitor
from central.ingest import Ack, EventItem, Item, SnapshotItem, StatsItem, StatusItem
from central.metrics import LagTracker, NodeBoard
from central.store import EventRow, Store

log = logging.getLogger(__name__)

APPLY_ATTEMPTS = 3  # for errors that are not the database being away
MAX_RETRY_DELAY_S = 5.0
LINGER_S = 0.005  # under load, how long a batch waits to fill: a few ms of latency, far fewer commits

Job = Callable[[float], None]  # housekeeping run in the writer thread, given the wall-clock time


class Writer:
    def __init__(
        self,
        store: Store,
        inbox: queue.Queue[Item],
        ack: Callable[[list[Ack]], None],
        announcer: Announcer,
        health: HealthMonitor,
        *,
        batch_max: int = 500,
        linger_s: float = LINGER_S,
        binder: SnapshotBinder | None = None,
        acks: AckPublisher | None = None,
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.ack = ack
        self.announcer = announcer
        self.health = health
        self.batch_max = batch_max
        self.linger_s = linger_s
        self.binder = binder or SnapshotBinder(store)  # snapshots only from the event's node, its sha256
        self.acks = acks  # storage watermarks to the nodes (central/acks.py)
        self.heartbeat: Callable[[], object] | None = None  # called while this loop makes progress
        self.last_beat = time.monotonic()
        self.stored_events = 0
        self.errors = 0
        self.write_failure: str | None = None  # why the last batch did not commit; /healthz fails meanwhile
        self.duplicates = 0  # events received again (redelivery, node resend) and dropped
        self.stored_snapshots = 0
        self.lag = LagTracker()  # ingest lag of stored edge events, for the metrics endpoint
        self.nodes = NodeBoard()  # latest status and stats of every node, for the metrics endpoint
        self.on_stored: Callable[[list[EventRow], float], None] | None = None  # benchmarks measure here
        self._jobs: collections.deque[Job] = collections.deque()
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

    def submit(self, job: Job) -> None:
        """Run `job` in the writer thread after the current batch (thread-safe)."""
        self._jobs.append(job)

    def beat(self) -> None:
        self.last_beat = time.monotonic()
        if self.heartbeat is not None:
            self.heartbeat()

    def alive(self, stall_s: float) -> bool:
        """Whether this loop made progress in the last `stall_s` seconds (a hung writer did not)."""
        return time.monotonic() - self.last_beat < stall_s

    def _run(self) -> None:
        while True:
            try:
                first = self.inbox.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    return
                first = None
            batch = self._fill([] if first is None else [first])
            self.beat()
            if batch:
                self._apply_with_retry(batch)
            self._housekeeping(time.time())

    def _fill(self, batch: list[Item]) -> list[Item]:
        """Take what is queued behind the first item (`central.batching`: every batch costs a few
        transactions and queries whatever its size)."""
        return fill_batch(self.inbox, batch, self.batch_max, self.linger_s)

    def _housekeeping(self, now: float) -> None:
        try:
            while self._jobs:
                self._jobs.popleft()(now)
            self.announcer.flush(now)
            if self.acks is not None:
                self.acks.flush(now)
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
            self.beat()
            self._stop.wait(min(0.2 * 2 ** (attempt - 1), MAX_RETRY_DELAY_S))
        log.error(
            "gave up on a batch of %d messages; unacknowledged, the broker delivers them again", len(batch)
        )

    def apply(self, batch: list[Item], now: float) -> None:
        """Store one batch, acknowledge it, announce what is new."""
        events = [i.row for i in batch if isinstance(i, EventItem)]
        snaps = [i for i in batch if isinstance(i, SnapshotItem)]
        new = self.store.insert_events(events)
        links = self.binder.bind(snaps, events, now)
        relinked = self.store.link_snapshots(links)
        self.binder.settle()
        self.store.track_sequences([(r.node, r.seq, r.ts_epoch) for r in new], now)
        if self.acks is not None:
            new_ids = {r.event_id for r in new}
            self.store.fill_gaps([(r.node, r.seq) for r in events if r.event_id not in new_ids], now)
            self.acks.note(r.node for r in events)
        nodes: list[str] = []
        for item in batch:
            if isinstance(item, StatusItem):
                self.store.upsert_node(item.node, item.state, item.received_epoch, None)
                self.health.on_status(item.node, item.state, item.received_epoch)
                self.nodes.on_status(item.node, item.state)
                nodes.append(item.node)
            elif isinstance(item, StatsItem):
                self.store.upsert_node(item.node, None, item.received_epoch, item.stats)
                self.health.on_stats(item.node, item.stats, item.received_epoch)
                self.nodes.on_stats(item.node, item.stats)
                nodes.append(item.node)
        self.ack([i.ack for i in batch if i.ack is not None])
        self.stored_events += len(new)
        self.duplicates += len(events) - len(new)
        self.stored_snapshots += len(links)
        self.lag.observe([now - r.ts_epoch for r in new], now)
        if self.on_stored is not None:
            self.on_stored(new, now)
        self.announcer.events(new, {link[0] for link in links}, relinked, now)
        self.announcer.nodes(nodes)
