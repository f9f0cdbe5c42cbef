"""The node's stats payload: per-camera figures from the pipeline, outbox figures, board health.

The payload layout lives in `edge.transport.wire` (after `contract`); this module only gathers the numbers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from contract.states import STREAM_STATES
from edge.config import NodeConfig
from edge.transport.board import read_system_health
from edge.transport.wire import CameraFigures, stats_payload


class _HasCameraStats(Protocol):
    def camera_stats(self) -> dict[str, dict[str, Any]]: ...


class _OutboxFigures(Protocol):
    @property
    def seq_next(self) -> int: ...

    def as_wire(self) -> dict[str, int]: ...


def node_stats(cfg: NodeConfig, node: _HasCameraStats, outbox: _OutboxFigures | None) -> dict[str, Any]:
    """The stats payload (contract v1, see docs/mqtt-api.md)."""
    cams = {
        cam_id: CameraFigures(
            fps=float(v["fps"]),
            inference_ms=float(v["inference_ms"]),
            dropped_frames=int(v["dropped_frames"]),
            stream_state=v["stream_state"] if v["stream_state"] in STREAM_STATES else "lost",
            tracks=int(v["tracks"]),
        )
        for cam_id, v in node.camera_stats().items()
    }
    disk = Path(cfg.outbox.path).resolve().parent
    while not disk.exists() and disk != disk.parent:
        disk = disk.parent
    return stats_payload(
        cfg.node_id,
        time.time(),
        cameras=cams,
        outbox=outbox.as_wire() if outbox is not None else {},
        system=read_system_health(disk),
        seq_next=outbox.seq_next if outbox is not None else None,
    )
