"""Prometheus metrics of the edge node, served on localhost by a tiny stdlib HTTP server.

The text exposition format is a few lines of our own; the prometheus_client package would add a
dependency and a global registry for the same result. The figures come from the same stats payload
that goes to the MQTT stats topic, so the two never disagree.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contract.states import STREAM_STATES

log = logging.getLogger(__name__)



def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return None
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_metrics(stats: dict[str, Any], counters: dict[str, float] | None = None) -> str:
    """Render a stats payload (contract v1) as Prometheus text format."""
    node = _esc(str(stats.get("node", "")))
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
        rendered = [(labels, _num(v)) for labels, v in samples]
        rendered = [(labels, v) for labels, v in rendered if v is not None]
        if not rendered:
            return
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, v in rendered:
            lines.append(f"{name}{{{labels}}} {v}")

    cams: dict[str, dict[str, Any]] = stats.get("cameras", {})

    def cam_labels(cam: str) -> str:
        return f'node="{node}",camera="{_esc(cam)}"'

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
        [(f'node="{node}"', outbox.get("depth"))],
    )
    metric(
        "roadwatch_outbox_dropped_events_total",
        "counter",
        "Events dropped by the outbox budget",
        [(f'node="{node}"', outbox.get("dropped_events"))],
    )
    metric(
        "roadwatch_outbox_dropped_snapshots_total",
        "counter",
        "Snapshots dropped by the outbox budget",
        [(f'node="{node}"', outbox.get("dropped_snapshots"))],
    )
    metric(
        "roadwatch_cpu_load", "gauge", "1-minute load average", [(f'node="{node}"', stats.get("cpu_load"))]
    )
    metric(
        "roadwatch_temperature_celsius",
        "gauge",
        "SoC temperature",
        [(f'node="{node}"', stats.get("temperature_c"))],
    )
    metric(
        "roadwatch_disk_free_mb",
        "gauge",
        "Free disk space of the data directory",
        [(f'node="{node}"', stats.get("disk_free_mb"))],
    )
    for name, value in sorted((counters or {}).items()):
        metric(f"roadwatch_{name}", "counter", name.replace("_", " "), [(f'node="{node}"', value)])
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves `GET /metrics` from `provider()`; bound to localhost unless configured otherwise."""

    def __init__(self, host: str, port: int, provider: Callable[[], str]) -> None:
        provide = provider

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics here")
                    return
                try:
                    body = provide().encode("utf-8")
                except Exception:
                    log.exception("metrics provider failed")
                    self.send_error(500, "metrics unavailable")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
