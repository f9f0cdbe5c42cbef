"""Snapshots bound to their event: from the node that sent it, with the sha256 it declared.

Before, any node could publish a JPEG on `.../n1/x/snapshots/<an event id of n2>` and the aggregator
served those bytes as n2's picture; and orphan snapshots (no event yet) counted against the disk budget
only at the next retention pass, where a flood evicted the real ones. Now:

- a snapshot whose event is stored is linked only if the snapshot topic's node is the event's node and
  the bytes' sha256 is the one the event declared; anything else is rejected and counted by reason
  (`snapshot_wrong_node`, `snapshot_sha_mismatch`, `snapshot_not_declared`);
- a snapshot whose event has not arrived yet (nodes publish the JPEG first) is an orphan: kept in its own
  table under a per-node quota enforced on arrival (`snapshot_orphan_quota` beyond it), checked the same
  way when its event arrives, and expired after `orphan_snapshot_ttl_s`. Orphans never count against,
  and never evict, the snapshots of stored events; one node's flood does not block another node's.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from central.ingest import IngestCounters, SnapshotItem
from central.store import EventRow, Store

log = logging.getLogger(__name__)

Link = tuple[str, str, int, float]  # event_id, sha256, bytes, received_epoch


@dataclass(frozen=True, slots=True)
class Orphan:
    event_id: str
    node: str
    sha256: str
    nbytes: int
    received_epoch: float


def declared_sha(payload: dict[str, object]) -> str | None:
    snap = payload.get("snapshot")
    sha = snap.get("sha256") if isinstance(snap, dict) else None
    return sha if isinstance(sha, str) else None


class SnapshotBinder:
    """Checks snapshots against their events and keeps orphans within their quota (writer thread only)."""

    def __init__(
        self,
        store: Store,
        counters: IngestCounters | None = None,
        orphan_quota_bytes: int = 16 * 1024 * 1024,
        orphan_ttl_s: float = 3600.0,
    ) -> None:
        self.store = store
        self.counters = counters or IngestCounters()
        self.orphan_quota_bytes = orphan_quota_bytes
        self.orphan_ttl_s = orphan_ttl_s
        self._claimed: list[str] = []  # event ids whose orphans this batch used or refused
        self._released: list[str] = []  # their files, deleted if nothing else names them

    def bind(self, snaps: Sequence[SnapshotItem], events: Sequence[EventRow], now: float) -> list[Link]:
        """The links to record for this batch (events already stored): snapshots whose event is known and
        orphans claimed by events of the batch; everything refused is counted."""
        links: list[Link] = []
        self._claimed, self._released = [], []
        known = self.store.event_bindings([s.event_id for s in snaps])
        for snap in snaps:
            sha = hashlib.sha256(snap.data).hexdigest()
            if snap.event_id in known:
                node, want = known[snap.event_id]
                if self._accept(snap.event_id, snap.node, sha, node, want):
                    links.append((snap.event_id, self.store.snapshots.put(snap.data), len(snap.data), now))
                continue
            used = self.store.orphan_bytes(snap.node)
            if used + len(snap.data) > self.orphan_quota_bytes:
                self._reject("snapshot_orphan_quota", snap.event_id, f"node {snap.node} holds {used} bytes")
                continue
            self.store.snapshots.put(snap.data)
            self.store.add_orphan(snap.event_id, snap.node, sha, len(snap.data), snap.received_epoch)
        wanted = {r.event_id: r for r in events}
        for event_id, node, sha, nbytes, received in self.store.orphans_for(list(wanted)):
            row = wanted[event_id]
            if self._accept(event_id, node, sha, row.node, declared_sha(row.payload)):
                links.append((event_id, sha, nbytes, received))
            self._claimed.append(event_id)
            self._released.append(sha)
        return links

    def settle(self) -> None:
        """After the batch's links are committed: forget the orphans it claimed, delete refused files."""
        if self._claimed:
            self.store.forget_orphans(self._claimed)
            self.store.drop_unreferenced(self._released)
        self._claimed, self._released = [], []

    def expire(self, now: float) -> int:
        """Forget orphans whose event never came; returns how many."""
        shas = self.store.expire_orphans(now - self.orphan_ttl_s)
        self.store.drop_unreferenced(shas)
        if shas:
            log.info("expired %d orphan snapshots whose event never arrived", len(shas))
        return len(shas)

    def _accept(self, event_id: str, from_node: str, sha: str, node: str, want: str | None) -> bool:
        if from_node != node:
            self._reject("snapshot_wrong_node", event_id, f"published by {from_node}, event of {node}")
        elif want is None:
            self._reject("snapshot_not_declared", event_id, "the event declares no snapshot")
        elif sha != want:
            self._reject("snapshot_sha_mismatch", event_id, f"sha256 {sha[:12]}..., declared {want[:12]}...")
        else:
            return True
        return False

    def _reject(self, reason: str, event_id: str, detail: str) -> None:
        if self.counters.reject(reason, time.monotonic()):
            log.warning("rejected snapshot for event %s: %s (%s)", event_id, reason, detail)
