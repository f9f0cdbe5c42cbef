"""Node statistics for the MQTT stats topic: per-camera figures, outbox depth, CPU load, temperature, disk."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

from edge.config import NodeConfig
from edge.events import utc_iso


class _HasCameraStats(Protocol):
    def camera_stats(self) -> dict[str, dict[str, Any]]: ...


class _HasStats(Protocol):
    def stats(self) -> dict[str, Any]: ...


def cpu_temperature_c() -> float | None:
    """SoC temperature where the board exposes it (Raspberry Pi, Jetson: thermal_zone0)."""
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def cpu_load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def disk_free_mb(path: str) -> float | None:
    try:
        target = Path(path).resolve().parent
        while not target.exists() and target != target.parent:
            target = target.parent
        return round(shutil.disk_usage(target).free / 2**20, 1)
    except OSError:
        return None


def node_stats(cfg: NodeConfig, node: _HasCameraStats, publisher: _HasStats | None) -> dict[str, Any]:
    """The stats payload (contract v1, see docs/mqtt-api.md)."""
    pub = publisher.stats() if publisher is not None else {}
    return {
        "v": 1,
        "node": cfg.node_id,
        "ts": utc_iso(time.time()),
        "cameras": node.camera_stats(),
        "outbox": {
            "depth": int(pub.get("outbox_depth", 0)),
            "dropped_events": int(pub.get("dropped_events", 0)),
            "dropped_snapshots": int(pub.get("dropped_snapshots", 0)),
        },
        "cpu_load": cpu_load(),
        "temperature_c": cpu_temperature_c(),
        "disk_free_mb": disk_free_mb(cfg.outbox.path),
    }
