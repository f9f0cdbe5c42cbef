"""MQTT wire contract v1: topics and payloads that the edge publishes and central reads.

This module is the single place where an `Event` becomes bytes on the wire, so the contract written in
docs/mqtt-api.md and the JSON Schemas in edge/schemas/ describe exactly one function each. Payloads are
clamped to the limits central enforces (strings <= 1024 chars, arrays <= 64 items, finite numbers,
payload <= 64 KiB) here, at the source, so a rule that measures something odd can never produce an event
that the station would reject after it has waited for days in the outbox.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from edge.events import utc_iso
from edge.records import Event

WIRE_VERSION = 1
DEFAULT_PREFIX = "roadwatch/v1"
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_STRING = 1024
MAX_ITEMS = 64
RESERVED_NODE_IDS = frozenset({"alerts"})  # <prefix>/alerts/# is where central forwards alerts

KINDS: tuple[str, ...] = (
    "line_crossing", "count_summary", "zone_occupancy", "crowding", "loitering", "intrusion",
    "stopped_vehicle", "wrong_way", "speeding", "suspected_collision", "stream_lost", "stream_restored",
    "frozen_picture", "camera_blocked", "camera_defocused", "camera_moved",
)  # fmt: skip

NodeState = Literal["online", "offline", "stopped"]
StreamState = Literal["ok", "lost", "frozen", "starting"]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def topic_event(prefix: str, node: str, camera: str, kind: str) -> str:
    return f"{prefix}/{node}/{camera}/events/{kind}"


def topic_snapshot(prefix: str, node: str, camera: str, event_id: str) -> str:
    return f"{prefix}/{node}/{camera}/snapshots/{event_id}"


def topic_status(prefix: str, node: str) -> str:
    return f"{prefix}/{node}/status"


def topic_stats(prefix: str, node: str) -> str:
    return f"{prefix}/{node}/stats"


def topic_ack(prefix: str, node: str) -> str:
    """The aggregator's retained storage watermark for one node (edge/schemas/ack.schema.json)."""
    return f"{prefix}/{node}/ack"


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Where an event's JPEG is published and how the receiver checks that it got the right bytes."""

    topic: str
    sha256: str
    nbytes: int

    @classmethod
    def of(cls, topic: str, jpeg: bytes) -> SnapshotMeta:
        return cls(topic=topic, sha256=hashlib.sha256(jpeg).hexdigest(), nbytes=len(jpeg))

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "sha256": self.sha256, "bytes": self.nbytes}


def _clamp_str(value: str) -> str:
    return value[:MAX_STRING]


def _scalar(value: Any) -> str | int | float | bool | None:
    """A JSON scalar that central accepts: numpy scalars become Python ones, NaN/inf become null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _clamp_str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        return _scalar(item())
    return _clamp_str(str(value))


def _measurement(value: Any) -> Any:
    """Scalars, or one level of list/dict of scalars (e.g. per-class counts), within the item limits."""
    if isinstance(value, Mapping):
        return {_clamp_str(str(k)): _scalar(v) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, (list, tuple)):
        return [_scalar(v) for v in value[:MAX_ITEMS]]
    return _scalar(value)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def event_payload(event: Event, seq: int, snapshot: SnapshotMeta | None) -> dict[str, Any]:
    """The v1 event payload (see edge/schemas/event.schema.json); `seq` is the node's sequence number."""
    box = None
    if event.box is not None:
        coords = [_finite_or_none(v) for v in event.box]
        box = None if any(c is None for c in coords) else coords
    return {
        "v": WIRE_VERSION,
        "event_id": event.event_id,
        "seq": int(seq),
        "kind": event.kind,
        "phase": event.phase,
        "node": event.node,
        "camera": event.camera,
        "rule": _clamp_str(event.rule),
        "ts": utc_iso(event.ts),
        "local_time": event.local_time,
        "classes": [_clamp_str(c) for c in event.classes[:MAX_ITEMS]],
        "track_ids": [int(t) for t in event.track_ids[:MAX_ITEMS]],
        "confidence": _finite_or_none(event.confidence),
        "box": box,
        "measurements": {
            _clamp_str(str(k)): _measurement(v) for k, v in list(event.measurements.items())[:MAX_ITEMS]
        },
        "texts": {_clamp_str(k): _clamp_str(v) for k, v in list(event.texts.items())[:MAX_ITEMS]},
        "snapshot": None if snapshot is None else snapshot.as_dict(),
        # Decode index of the frame (file) or frame counter (live): matches counts to labelled frames.
        "frame": None if event.frame_seq is None else int(event.frame_seq),
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; refuses NaN/inf so a bad number fails here, not at the station."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode_event(payload: Mapping[str, Any]) -> bytes:
    """Encode an event payload and check the 64 KiB limit; raises ValueError when it is exceeded."""
    data = encode(payload)
    if len(data) > MAX_PAYLOAD_BYTES:
        event_id = payload.get("event_id")
        raise ValueError(f"event {event_id} payload is {len(data)} bytes, over {MAX_PAYLOAD_BYTES}")
    return data


def status_payload(node: str, state: NodeState, ts: float) -> dict[str, Any]:
    """Retained node availability; `offline` is registered as the MQTT last will."""
    return {"v": WIRE_VERSION, "node": node, "state": state, "ts": utc_iso(ts)}


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """One camera's line in the stats payload."""

    fps: float
    inference_ms: float
    dropped_frames: int
    stream_state: StreamState
    tracks: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "fps": round(_finite_or_none(self.fps) or 0.0, 2),
            "inference_ms": round(_finite_or_none(self.inference_ms) or 0.0, 2),
            "dropped_frames": int(self.dropped_frames),
            "stream_state": self.stream_state,
            "tracks": int(self.tracks),
        }


@dataclass(frozen=True, slots=True)
class SystemHealth:
    cpu_load: float | None
    temperature_c: float | None
    disk_free_mb: float | None


def read_system_health(
    disk_path: str | Path = ".", thermal: str | Path = "/sys/class/thermal/thermal_zone0/temp"
) -> SystemHealth:
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


def stats_payload(
    node: str,
    ts: float,
    *,
    cameras: Mapping[str, CameraHealth],
    outbox: Mapping[str, int],
    system: SystemHealth,
    seq_next: int | None = None,
) -> dict[str, Any]:
    """Periodic node health; `outbox` holds depth, dropped_events and dropped_snapshots."""
    payload: dict[str, Any] = {"v": WIRE_VERSION, "node": node, "ts": utc_iso(ts)}
    if seq_next is not None:
        payload["seq_next"] = int(seq_next)
    payload["cameras"] = {cam: health.as_dict() for cam, health in list(cameras.items())[:MAX_ITEMS]}
    payload["outbox"] = {k: int(outbox.get(k, 0)) for k in ("depth", "dropped_events", "dropped_snapshots")}
    payload["cpu_load"] = _finite_or_none(system.cpu_load)
    payload["temperature_c"] = _finite_or_none(system.temperature_c)
    payload["disk_free_mb"] = _finite_or_none(system.disk_free_mb)
    return payload


@cache
def load_schema(name: Literal["event", "status", "stats", "command", "ack"]) -> dict[str, Any]:
    """The JSON Schema of one payload, read from edge/schemas/<name>.schema.json."""
    data: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return data
