"""Prometheus metrics of the edge node, served on localhost by `common.metrics.MetricsServer`.

The figures come from the same stats payload that goes to the MQTT stats topic, so the two never disagree.
"""

from __future__ import annotations

from typing import Any

from common.metrics import MetricText, labels
from contract.states import STREAM_STATES


def render_metrics(stats: dict[str, Any], counters: dict[str, float] | None = None) -> str:
    """Render a stats payload (contract v1) as Prometheus text format."""
    node = str(stats.get("node", ""))
    t = MetricText()
    metric = t.add
    cams: dict[str, dict[str, Any]] = stats.get("cameras", {})

    def cam_labels(cam: str) -> str:
        return labels(node=node, camera=cam)

    metric(
        "roadwatch_camera_fps",
        "gauge",
        "Frames analysed per second",
        [(cam_labels(c), v.get("fps")) for c, v in cams.items()],
    )
    metric(
        "roadwatch_camera_inference_ms",
        "gauge",
        "Last detector run, milliseconds",
        [(cam_labels(c), v.get("inference_ms")) for c, v in cams.items()],
    )
    metric(
        "roadwatch_camera_dropped_frames_total",
        "counter",
        "Frames replaced before they were analysed",
        [(cam_labels(c), v.get("dropped_frames")) for c, v in cams.items()],
    )
    metric(
        "roadwatch_camera_tracks",
        "gauge",
        "Confirmed tracks in the last analysed frame",
        [(cam_labels(c), v.get("tracks")) for c, v in cams.items()],
    )
    metric(
        "roadwatch_camera_stream_state",
        "gauge",
        "1 for the camera's current stream state",
        [
            (f'{cam_labels(c)},state="{s}"', int(v.get("stream_state") == s))
            for c, v in cams.items()
            for s in STREAM_STATES
        ],
    )
    outbox = stats.get("outbox", {})
    metric(
        "roadwatch_outbox_depth",
        "gauge",
        "Events stored and not yet acknowledged by the broker",
        [(labels(node=node), outbox.get("depth"))],
    )
    metric(
        "roadwatch_outbox_dropped_events_total",
        "counter",
        "Events dropped by the outbox budget",
        [(labels(node=node), outbox.get("dropped_events"))],
    )
    metric(
        "roadwatch_outbox_dropped_snapshots_total",
        "counter",
        "Snapshots dropped by the outbox budget",
        [(labels(node=node), outbox.get("dropped_snapshots"))],
    )
    metric(
        "roadwatch_cpu_load", "gauge", "1-minute load average", [(labels(node=node), stats.get("cpu_load"))]
    )
    metric(
        "roadwatch_temperature_celsius",
        "gauge",
        "SoC temperature",
        [(labels(node=node), stats.get("temperature_c"))],
    )
    metric(
        "roadwatch_disk_free_mb",
        "gauge",
        "Free disk space of the data directory",
        [(labels(node=node), stats.get("disk_free_mb"))],
    )
    for name, value in sorted((counters or {}).items()):
        metric(f"roadwatch_{name}", "counter", name.replace("_", " "), [(labels(node=node), value)])
    return t.text()
