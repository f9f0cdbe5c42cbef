"""Building `Event` records: ids, UTC and local times, display texts.

Rules and camera-health checks do not know the node id, the time zone or the languages; they ask the
camera's `EventFactory` for an event and give only what they measured.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from contract.states import Phase
from edge.records import Event

TextFn = Callable[[str, Phase, tuple[str, ...], dict[str, Any], str], dict[str, str]]


def _default_texts(
    kind: str, phase: Phase, classes: tuple[str, ...], m: dict[str, Any], rule: str
) -> dict[str, str]:
    from edge.texts import describe

    return describe(kind, phase, classes, m, rule)


class EventFactory:
    """Makes the events of one camera of one node. Holds no mutable state: safe to share."""

    def __init__(
        self, node: str, camera: str, tz: str = "Asia/Ho_Chi_Minh", texts: TextFn | None = None
    ) -> None:
        self.node = node
        self.camera = camera
        self.tz = ZoneInfo(tz)
        self._texts = texts or _default_texts

    def local_time(self, ts: float) -> str:
        """ISO 8601 local time with offset, e.g. 2026-11-28T22:05:01.250+07:00."""
        return datetime.fromtimestamp(ts, self.tz).isoformat(timespec="milliseconds")

    def make(
        self,
        kind: str,
        rule: str,
        ts: float,
        phase: Phase = "instant",
        classes: tuple[str, ...] = (),
        track_ids: tuple[int, ...] = (),
        confidence: float | None = None,
        box: tuple[float, float, float, float] | None = None,
        measurements: dict[str, Any] | None = None,
        frame_seq: int | None = None,
    ) -> Event:
        m = dict(measurements or {})
        return Event(
            event_id=str(uuid.uuid4()),
            kind=kind,
            phase=phase,
            node=self.node,
            camera=self.camera,
            rule=rule,
            ts=ts,
            local_time=self.local_time(ts),
            classes=classes,
            track_ids=tuple(int(t) for t in track_ids),
            confidence=None if confidence is None else round(float(confidence), 4),
            box=None
            if box is None
            else (
                round(float(box[0]), 1),
                round(float(box[1]), 1),
                round(float(box[2]), 1),
                round(float(box[3]), 1),
            ),
            measurements=m,
            texts=self._texts(kind, phase, classes, m, rule),
            frame_seq=frame_seq,
        )
