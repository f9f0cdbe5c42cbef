"""Node and camera health from the status and stats topics, and the alerts central raises about it.

A node that goes `offline` (its MQTT last will) for longer than `offline_alert_after_s`, or a camera whose
stream stays `lost` longer than `stream_lost_alert_after_s`, produces one central event (`node_offline`,
`camera_stream_lost`) that is stored, shown live and forwarded like any edge event. `stopped` is a
deliberate shutdown and raises nothing. Runs in the writer thread only, so it needs no locks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from central.config import HealthSettings
from central.store import EventRow
from contract.times import iso_from_epoch

NODE_CAMERA = "-"  # the camera segment of node-level alerts (topics need one)


@dataclass
class NodeHealth:
    state: str = "online"
    state_since: float = 0.0
    alerted: bool = False
    lost_since: dict[str, float] = field(default_factory=dict)
    lost_alerted: set[str] = field(default_factory=set)


class HealthMonitor:
    def __init__(self, settings: HealthSettings, tz: str) -> None:
        self.settings = settings
        self.tz = ZoneInfo(tz)
        self.nodes: dict[str, NodeHealth] = {}

    def on_status(self, node: str, state: str, now: float) -> None:
        h = self.nodes.setdefault(node, NodeHealth(state, now))
        if h.state != state:
            h.state, h.state_since = state, now
        if state != "offline":
            h.alerted = False

    def on_stats(self, node: str, stats: dict[str, Any], now: float) -> None:
        h = self.nodes.setdefault(node, NodeHealth("online", now))
        for camera, cam in (stats.get("cameras") or {}).items():
            if cam.get("stream_state") == "lost":
                h.lost_since.setdefault(camera, now)
            else:
                h.lost_since.pop(camera, None)
                h.lost_alerted.discard(camera)

    def check(self, now: float) -> list[EventRow]:
        """Alerts that became due since the last check (each condition alerts once until it clears)."""
        out: list[EventRow] = []
        s = self.settings
        for node, h in self.nodes.items():
            if h.state == "offline" and not h.alerted and now - h.state_since >= s.offline_alert_after_s:
                h.alerted = True
                down_s = round(now - h.state_since, 1)
                out.append(
                    self._alert(
                        "node_offline",
                        node,
                        NODE_CAMERA,
                        now=now,
                        measurements={"offline_s": down_s},
                        texts={
                            "vi": f"Mất kết nối với nút {node} ({down_s:.0f} giây)",
                            "en": f"Node {node} offline ({down_s:.0f} s)",
                        },
                    )
                )
            if h.state == "offline":
                continue  # stats are stale while the node is away
            for camera, since in h.lost_since.items():
                if camera not in h.lost_alerted and now - since >= s.stream_lost_alert_after_s:
                    h.lost_alerted.add(camera)
                    lost_s = round(now - since, 1)
                    out.append(
                        self._alert(
                            "camera_stream_lost",
                            node,
                            camera,
                            now=now,
                            measurements={"lost_s": lost_s},
                            texts={
                                "vi": f"Camera {camera} ({node}) mất tín hiệu ({lost_s:.0f} giây)",
                                "en": f"Camera {camera} ({node}) stream lost ({lost_s:.0f} s)",
                            },
                        )
                    )
        return out

    def _alert(
        self,
        kind: str,
        node: str,
        camera: str,
        *,
        now: float,
        measurements: dict[str, Any],
        texts: dict[str, str],
    ) -> EventRow:
        event_id = str(uuid.uuid4())
        ts = iso_from_epoch(now)
        payload: dict[str, Any] = {
            "v": 1,
            "event_id": event_id,
            "seq": 0,
            "kind": kind,
            "phase": "start",
            "node": node,
            "camera": camera,
            "rule": "health",
            "ts": ts,
            "local_time": datetime.fromtimestamp(now, self.tz).isoformat(timespec="milliseconds"),
            "classes": [],
            "track_ids": [],
            "confidence": None,
            "box": None,
            "measurements": measurements,
            "texts": texts,
            "snapshot": None,
        }
        return EventRow(event_id, node, camera, kind, "start", "health", 0, ts, now, now, (), payload)
