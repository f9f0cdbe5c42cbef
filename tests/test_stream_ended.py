"""A file camera that reached its end: the node reports `ended` (not `lost`), the station accepts it and
raises no `camera_stream_lost`, while a really lost stream still alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central.config import HealthSettings
from central.health import HealthMonitor
from contract.topics import parse_topic
from contract.validate import validate_stats
from edge.config import validate_config
from edge.transport.stats import node_stats
from edge.transport.wire import encode


class _Node:
    """What the pipeline hands to `node_stats`: per-camera figures by camera id."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states

    def camera_stats(self) -> dict[str, dict[str, Any]]:
        return {
            cam: {"fps": 0.0, "inference_ms": 0.0, "dropped_frames": 0, "stream_state": s, "tracks": 0}
            for cam, s in self.states.items()
        }


@pytest.mark.parametrize(
    ("reported", "on_wire", "alerts"),
    [
        ("ended", "ended", []),
        ("lost", "lost", ["camera_stream_lost"]),
        ("frozen", "frozen", []),
        ("weird", "lost", ["camera_stream_lost"]),  # an unknown reader state is reported as lost
    ],
)
def test_stream_state_from_node_to_station(
    tmp_path: Path, reported: str, on_wire: str, alerts: list[str]
) -> None:
    cfg = validate_config(
        {
            "node_id": "n1",
            "outbox": {"path": str(tmp_path / "outbox.sqlite")},
            "cameras": [{"id": "clip", "source": str(tmp_path / "clip.mp4")}],
        }
    )
    payload = node_stats(cfg, _Node({"clip": reported}), None)
    assert payload["cameras"]["clip"]["stream_state"] == on_wire
    topic = parse_topic("roadwatch/v1/n1/stats", "roadwatch/v1")
    assert topic is not None
    stats = validate_stats(topic, encode(payload))
    assert not hasattr(stats, "reason"), stats
    monitor = HealthMonitor(HealthSettings(stream_lost_alert_after_s=10.0), "Asia/Ho_Chi_Minh")
    monitor.on_status("n1", "online", 1000.0)
    monitor.on_stats("n1", stats.model_dump(mode="json"), 1000.0)
    assert [row.kind for row in monitor.check(1011.0)] == alerts
