"""Board health for the stats payload: load average, SoC temperature and free disk, where exposed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge.transport.wire import SystemHealth

THERMAL_ZONE = "/sys/class/thermal/thermal_zone0/temp"  # Raspberry Pi and Jetson SoC sensor


def read_system_health(disk_path: str | Path = ".", thermal: str | Path = THERMAL_ZONE) -> SystemHealth:
    """1-minute load average, SoC temperature and free disk where the board exposes them, else None."""
    try:
        cpu: float | None = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        cpu = None
    try:
        temp: float | None = round(int(Path(thermal).read_text(encoding="ascii").strip()) / 1000.0, 1)
    except (OSError, ValueError):
        temp = None
    try:
        disk: float | None = round(shutil.disk_usage(disk_path).free / 1e6, 1)
    except OSError:
        disk = None
    return SystemHealth(cpu, temp, disk)
