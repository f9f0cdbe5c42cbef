"""What follows a commit: new events go to the live feed and to forwarding, node changes to the feed.

Runs in the writer thread, after each batch has committed, so nothing is announced that could still be
lost. An event that names a snapshot which has not arrived yet is held back from the live feed for up to
`snapshot_wait_s`, so the dashboard shows it once, with its thumbnail; a snapshot arriving later still
re-announces the event (clients upsert by event_id).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from central.forward import Forwarder
from central.live import LiveHub
from central.store import EventRow, Store

log = logging.getLogger(__name__)


class Announcer:
    def __init__(
        self, store: Store, hub: LiveHub, forwarder: Forwarder | None, snapshot_wait_s: float = 1.0
    ) -> None:
        self.store = store
        self.hub = hub
        self.forwarder = forwarder
        self.snapshot_wait_s = snapshot_wait_s
        self._pending: dict[str, float] = {}  # event id -> announce deadline while its snapshot is awaited

    def events(self, new: list[EventRow], linked_now: set[str], relinked: list[str], now: float) -> None:
        """Announce a committed batch's new events and the stored events that just got their snapshot."""
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

    def central_events(self, rows: Iterable[EventRow]) -> None:
        """Store and announce events the station raises itself (node offline, camera stream lost)."""
        for row in self.store.insert_events(list(rows)):
            log.warning("%s: %s", row.kind, row.payload["texts"].get("en", ""))
            self._announce(row.event_id, forward=True)

    def nodes(self, names: Iterable[str]) -> None:
        for name in names:
            node = self.store.node(name)
            if node is not None:
                self.hub.publish("node", node)

    def flush(self, now: float) -> None:
        """Announce the held-back events whose snapshot wait is over."""
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
