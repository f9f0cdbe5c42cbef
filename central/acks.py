"""Storage acknowledgements: after committing a node's events, tell the node which of them are stored.

The watermark goes on `<prefix>/<node>/ack`, retained, QoS 1 (edge/schemas/ack.schema.json): `upto`, the
highest sequence number of the node's current counter that is stored, and `missing`, the open gaps below
it. A node deletes an event from its outbox only when a watermark covers it, so events a broker
acknowledged and then lost (killed before its autosave) are published again. Only the aggregator may
write that topic and only that node may read it (configs/mosquitto/acl).

Published from the writer thread after each commit, at most every `min_interval_s` per node (a burst of
thousands of events costs a few messages), and for every known node after each (re)connect, since a
broker that lost its retained messages must learn them again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from central.store import Store
from contract.times import iso_from_epoch

log = logging.getLogger(__name__)

MAX_MISSING = 256  # ranges in one watermark; beyond, `upto` stops below the first range left out

Publish = Callable[[str, bytes, bool], object]  # topic, payload, retain


def watermark_payload(node: str, upto: int, gaps: list[tuple[int, int]], now: float) -> dict[str, object]:
    """The ack payload; with more gaps than fit, `upto` is lowered so that nothing unlisted is covered."""
    gaps = sorted(g for g in gaps if g[0] <= upto)
    if len(gaps) > MAX_MISSING:
        upto = gaps[MAX_MISSING][0] - 1
        gaps = gaps[:MAX_MISSING]
    return {"v": 1, "node": node, "upto": upto, "missing": [list(g) for g in gaps], "ts": iso_from_epoch(now)}


class AckPublisher:
    """Collects the nodes whose events a batch held and publishes their watermarks (writer thread)."""

    def __init__(
        self,
        store: Store,
        publish: Publish,
        prefix: str,
        connection: Callable[[], int],
        min_interval_s: float = 0.5,
    ) -> None:
        self.store = store
        self.publish = publish
        self.prefix = prefix
        self.connection = connection  # changes at every (re)connect: then every node is published again
        self.min_interval_s = min_interval_s
        self.published = 0
        self._dirty: set[str] = set()
        self._last: dict[str, float] = {}
        self._seen_connection = 0

    def note(self, nodes: Iterable[str]) -> None:
        """These nodes' events were just committed (new or duplicates: a resend needs its answer too)."""
        self._dirty.update(nodes)

    def flush(self, now: float) -> None:
        current = self.connection()
        if current != self._seen_connection and current > 0:
            self._seen_connection = current
            self._dirty.update(self.store.sequence_nodes())
            self._last.clear()
        due = {n for n in self._dirty if now - self._last.get(n, 0.0) >= self.min_interval_s}
        for node in sorted(due):
            mark = self.store.watermark(node)
            if mark is None:
                continue
            upto, gaps = mark
            body = json.dumps(watermark_payload(node, upto, gaps, now), separators=(",", ":"))
            self.publish(f"{self.prefix}/{node}/ack", body.encode(), True)
            self._last[node] = now
            self.published += 1
        self._dirty -= due
