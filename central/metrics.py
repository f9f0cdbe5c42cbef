"""Prometheus metrics of the aggregator, served on localhost by `common.metrics.MetricsServer`.

Figures come from what the aggregator already keeps: `Aggregator.status()`, the writer's
counters and ingest lag, and the latest status and stats payload of every node (`NodeBoard`), so a
scrape costs two small queries (webhook queue, open gaps) and no scan of the events table.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from common.metrics import MetricText, labels
from contract.states import NODE_STATES, STREAM_STATES

log = logging.getLogger(__name__)

WEBHOOK_STATES = ("pending", "delivered", "dead")
LAG_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
LAG_WINDOW_S = 60.0

# one sample each, from a key of `render_metrics`' status: (name after the prefix, type, help, key)
SCALARS: tuple[tuple[str, str, str, str], ...] = (
    ("events_stored_total", "counter", "Events stored since start", "events_stored"),
    (
        "duplicate_events_total",
        "counter",
        "Events received again and dropped by the idempotent insert",
        "duplicates",
    ),
    ("snapshots_stored_total", "counter", "Snapshot images stored since start", "snapshots_stored"),
    ("alerts_forwarded_total", "counter", "Alerts published to MQTT by forwarding rules", "alerts_published"),
    (
        "alerts_queued_offline_total",
        "counter",
        "Alerts raised while the broker was away, sent after reconnecting",
        "alerts_queued_offline",
    ),
    ("alerts_throttled_total", "counter", "Alerts suppressed by a rule's throttle", "alerts_throttled"),
    ("ingest_queue_depth", "gauge", "Messages between MQTT and the writer", "queue_depth"),
    ("writer_errors_total", "counter", "Failed writer batches", "writer_errors"),
    ("mqtt_connected", "gauge", "1 while connected to the broker", "mqtt_connected"),
    ("live_clients", "gauge", "Open live (SSE) connections", "live_clients"),
    ("uptime_seconds", "gauge", "Seconds since the aggregator started", "uptime_s"),
    ("clips_stored_total", "counter", "Event clips received whole, verified and stored", "clips_stored"),
)


class LagTracker:
    """Ingest lag (storage time minus the event's `ts`): a histogram, the last value and the last minute's max.

    Fed by the writer once per committed batch, read by the metrics thread; one lock, no allocation
    beyond a deque of at most one entry per second.
    """

    def __init__(self, buckets: Sequence[float] = LAG_BUCKETS_S, window_s: float = LAG_WINDOW_S) -> None:
        self.buckets = tuple(buckets)
        self.window_s = window_s
        self._lock = threading.Lock()
        self._counts = [0] * (len(self.buckets) + 1)  # the last slot is +Inf
        self._sum = 0.0
        self._last: float | None = None
        self._maxima: deque[tuple[int, float]] = deque()  # (whole second, max lag in it)

    def observe(self, lags_s: Iterable[float], now: float) -> None:
        values = [lag for lag in lags_s if math.isfinite(lag)]
        if not values:
            return
        second = int(now)
        top = max(values)
        with self._lock:
            for lag in values:  # a node clock ahead of ours gives a negative lag: counted in the first bucket
                self._counts[bisect.bisect_left(self.buckets, lag)] += 1
            self._sum += sum(values)
            self._last = values[-1]
            if self._maxima and self._maxima[-1][0] == second:
                self._maxima[-1] = (second, max(top, self._maxima[-1][1]))
            else:
                self._maxima.append((second, top))

    def snapshot(self, now: float) -> dict[str, Any]:
        """Cumulative bucket counts (Prometheus `le` semantics), sum, count, last and max over the window."""
        with self._lock:
            while self._maxima and self._maxima[0][0] < now - self.window_s:
                self._maxima.popleft()
            cumulative: list[int] = []
            running = 0
            for count in self._counts:
                running += count
                cumulative.append(running)
            return {
                "buckets": list(zip([*self.buckets, math.inf], cumulative, strict=True)),
                "sum": self._sum,
                "count": running,
                "last": self._last,
                "max_window": max((m for _, m in self._maxima), default=None),
            }


class NodeBoard:
    """The latest status and stats payload of every node, as the writer stored them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}
        self._stats: dict[str, dict[str, Any]] = {}

    def on_status(self, node: str, state: str) -> None:
        with self._lock:
            self._states[node] = state

    def on_stats(self, node: str, stats: dict[str, Any]) -> None:
        with self._lock:
            self._states.setdefault(node, "online")
            self._stats[node] = stats

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """node -> {"state": ..., "stats": {...}} (stats empty until the node's first stats message)."""
        with self._lock:
            return {
                node: {"state": state, "stats": self._stats.get(node, {})}
                for node, state in sorted(self._states.items())
            }


def render_metrics(status: dict[str, Any]) -> str:
    """Render the aggregator's figures as Prometheus text format.

    `status` is `Aggregator.status()` plus `events_stored`, `duplicates`, `snapshots_stored`,
    `open_gaps` (node -> count), `ingest_lag` (`LagTracker.snapshot`) and `nodes` (`NodeBoard.snapshot`).
    Missing keys leave their metrics out.
    """
    t = MetricText()
    p = "roadwatch_central_"
    for name, kind, help_text, key in SCALARS:
        t.add(p + name, kind, help_text, [("", status.get(key))])
    t.add(
        f"{p}messages_accepted_total",
        "counter",
        "Valid MQTT messages by channel",
        [(labels(channel=str(c)), n) for c, n in sorted((status.get("accepted") or {}).items())],
    )
    rejected = status.get("rejected")
    if rejected is not None:
        t.add(
            f"{p}messages_rejected_total",
            "counter",
            "Invalid MQTT messages, acknowledged and dropped, by reason",
            [(labels(reason=str(r)), n) for r, n in sorted(rejected.items())],
        )
    webhooks = status.get("webhooks")
    if webhooks is not None:
        t.add(
            f"{p}webhook_calls",
            "gauge",
            "Webhook calls by state: pending (the queue), delivered, dead (dead-lettered)",
            [(labels(state=s), int(webhooks.get(s, 0))) for s in WEBHOOK_STATES],
        )
    clips = status.get("clip_messages")
    if clips is not None:
        t.add(
            f"{p}clip_messages_total",
            "counter",
            "Clip upload messages from nodes by outcome (meta, chunk, stored, duplicate, bad_sha, no_meta, "
            "over_quota, interrupted by a restart, partial_expired, ...)",
            [(labels(outcome=str(o)), n) for o, n in sorted(clips.items())],
        )
    checks = status.get("signature_checks")  # central/verifier.py, where it runs
    if checks is not None:
        _signatures(t, p, checks)
    gaps = status.get("open_gaps")
    if gaps is not None:
        t.add(
            f"{p}open_sequence_gaps",
            "gauge",
            "Open gaps in a node's event sequence (events not received)",
            [(labels(node=str(n)), c) for n, c in sorted(gaps.items())],
        )
    lag = status.get("ingest_lag")
    if lag is not None:
        _lag(t, lag)
    _nodes(t, status.get("nodes") or {})
    return t.text()


def _lag(t: MetricText, lag: dict[str, Any]) -> None:
    t.histogram(
        "roadwatch_central_ingest_lag_seconds",
        "Storage time minus the event's ts",
        lag["buckets"],
        lag["sum"],
        lag["count"],
    )
    t.add(
        "roadwatch_central_ingest_lag_last_seconds",
        "gauge",
        "Ingest lag of the last stored event",
        [("", lag.get("last"))],
    )
    t.add(
        "roadwatch_central_ingest_lag_max_seconds",
        "gauge",
        "Largest ingest lag over the last minute",
        [("", lag.get("max_window"))],
    )


def _nodes(t: MetricText, nodes: dict[str, dict[str, Any]]) -> None:
    p = "roadwatch_central_"
    t.add(
        f"{p}node_state",
        "gauge",
        "1 for the node's current state (from its retained status topic)",
        [(labels(node=n, state=s), int(v.get("state") == s)) for n, v in nodes.items() for s in NODE_STATES],
    )
    cams = [
        (labels(node=n, camera=str(c)), cam)
        for n, v in nodes.items()
        for c, cam in sorted((v.get("stats", {}).get("cameras") or {}).items())
        if isinstance(cam, dict)
    ]
    for field, name, kind, help_text in (
        ("fps", "camera_fps", "gauge", "Frames analysed per second (latest stats)"),
        ("inference_ms", "camera_inference_ms", "gauge", "Last detector run, milliseconds (latest stats)"),
        ("dropped_frames", "camera_dropped_frames_total", "counter", "Frames dropped before analysis"),
        ("tracks", "camera_tracks", "gauge", "Confirmed tracks in the last analysed frame"),
    ):
        t.add(f"{p}{name}", kind, help_text, [(labels, cam.get(field)) for labels, cam in cams])
    t.add(
        f"{p}camera_stream_state",
        "gauge",
        "1 for the camera's current stream state",
        [
            (f'{labels},state="{s}"', int(cam.get("stream_state") == s))
            for labels, cam in cams
            for s in STREAM_STATES
        ],
    )
    outboxes = [(labels(node=n), v.get("stats", {}).get("outbox") or {}) for n, v in nodes.items()]
    for field, name, kind, help_text in (
        ("depth", "node_outbox_depth", "gauge", "Events in the node's outbox not yet acknowledged"),
        ("dropped_events", "node_outbox_dropped_events_total", "counter", "Events the node's outbox dropped"),
        (
            "dropped_snapshots",
            "node_outbox_dropped_snapshots_total",
            "counter",
            "Snapshots the node's outbox dropped",
        ),
    ):
        t.add(f"{p}{name}", kind, help_text, [(labels, box.get(field)) for labels, box in outboxes])


def _signatures(t: MetricText, p: str, checks: dict[str, Any]) -> None:
    where = (("workers", "checked_in_workers"), ("aggregator", "checked_here"))
    t.add(
        f"{p}signature_checks_total",
        "counter",
        "Event signatures verified, by where: worker processes or the aggregator itself",
        [(labels(where=w), checks.get(k)) for w, k in where],
    )
    t.add(
        f"{p}signature_worker_failures_total",
        "counter",
        "Times the signature workers failed (died, hung); their events were verified in the aggregator",
        [("", checks.get("pool_failures"))],
    )
