"""End-to-end delivery: an event leaves the outbox only when the aggregator says it is stored.

A broker's PUBACK is not storage: with the aggregator away and the broker killed before its autosave,
events the broker had acknowledged were lost. With `mqtt.delivery: aggregator` the publisher keeps an event
in the outbox after its PUBACK (in flight, awaiting storage) and deletes it only when the aggregator's
retained watermark on `<prefix>/<node>/ack` covers it (see edge/schemas/ack.schema.json). What stays
uncovered is published again after `mqtt.ack_timeout_s`, doubling per resend up to an hour; the aggregator
drops the copies by event id.

Two guards against a watermark that is not about the event: it must have been received after the event's
PUBACK (a retained watermark delivered at subscribe time may describe an earlier counter), and its `upto`
must be below the node's next sequence number (nothing can be stored that was never made).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

MAX_RESEND_S = 3600.0


@dataclass(frozen=True, slots=True)
class Watermark:
    """What the aggregator has stored of this node's counter, and when we heard it (monotonic s)."""

    upto: int
    missing: tuple[tuple[int, int], ...]
    received: float

    def covers(self, seq: int) -> bool:
        return seq <= self.upto and not any(lo <= seq <= hi for lo, hi in self.missing)


def parse_watermark(payload: bytes, node: str, received: float) -> Watermark | None:
    """The watermark in an ack message for `node`; None for anything malformed or for another node."""
    try:
        data = json.loads(payload)
        if not isinstance(data, dict) or data.get("v") != 1 or data.get("node") != node:
            return None
        upto = data["upto"]
        missing = tuple((int(lo), int(hi)) for lo, hi in data["missing"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(upto, int) or upto < 0:
        return None
    return Watermark(upto, missing, received)


@dataclass(slots=True)
class Awaiting:
    """Events the broker acknowledged and the aggregator has not yet confirmed: seq -> PUBACK time and
    the time of the next resend."""

    timeout_s: float
    pubacked: dict[int, float] = field(default_factory=dict)
    resend_at: dict[int, float] = field(default_factory=dict)
    _backoff: dict[int, float] = field(default_factory=dict)

    def add(self, seqs: list[int], now: float) -> None:
        for seq in seqs:
            self.pubacked[seq] = now
            delay = self._backoff.get(seq, self.timeout_s)
            self.resend_at[seq] = now + delay

    def confirm(self, mark: Watermark, next_seq: int) -> list[int]:
        """Seqs the watermark confirms (and forgets); none when it cannot be about this counter."""
        if mark.upto >= next_seq:
            return []
        done = [s for s, t in self.pubacked.items() if t <= mark.received and mark.covers(s)]
        for seq in done:
            self.pubacked.pop(seq, None)
            self.resend_at.pop(seq, None)
            self._backoff.pop(seq, None)
        return done

    def due(self, now: float) -> list[int]:
        """Seqs to publish again (oldest first); each one's next wait doubles, up to an hour."""
        seqs = sorted(s for s, t in self.resend_at.items() if t <= now)
        for seq in seqs:
            self.pubacked.pop(seq, None)
            self.resend_at.pop(seq, None)
            self._backoff[seq] = min(self._backoff.get(seq, self.timeout_s) * 2, MAX_RESEND_S)
        return seqs

    def forget(self, seqs: list[int]) -> None:
        for seq in seqs:
            self.pubacked.pop(seq, None)
            self.resend_at.pop(seq, None)
            self._backoff.pop(seq, None)


def monotonic() -> float:
    return time.monotonic()
