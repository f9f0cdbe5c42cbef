"""Turning the node's `Event` records and health figures into contract v1 payloads (see `contract`).

The wire format itself (topics, kinds, limits, models, JSON Schemas) lives in the `contract` package; this
module is the single place where an `Event` becomes bytes on the wire. Payloads are clamped to the limits
the station enforces (strings, arrays, finite numbers, payload size) here, at the source, so a rule that
measures something odd can never produce an event that the station would reject after it has waited for
days in the outbox.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.limits import MAX_ITEMS, MAX_PAYLOAD_BYTES, MAX_STRING, WIRE_VERSION
from contract.states import NodeState, StreamState
from contract.times import iso_from_epoch
from edge.records import Event


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
    """The v1 event payload (contract.models.EventPayload); `seq` is the node's sequence number."""
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
        "ts": iso_from_epoch(event.ts),
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
    return {"v": WIRE_VERSION, "node": node, "state": state, "ts": iso_from_epoch(ts)}


@dataclass(frozen=True, slots=True)
class CameraFigures:
    """One camera's line in the stats payload (the pipeline's figures, not the picture checks of
    `edge.capture.health.CameraHealth`)."""

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
    """Board figures, read by `edge.transport.board`; None where the board does not expose one."""

    cpu_load: float | None
    temperature_c: float | None
    disk_free_mb: float | None


def stats_payload(
    node: str,
    ts: float,
    *,
    cameras: Mapping[str, CameraFigures],
    outbox: Mapping[str, int],
    system: SystemHealth,
    seq_next: int | None = None,
) -> dict[str, Any]:
    """Periodic node health; `outbox` holds depth, dropped_events and dropped_snapshots."""
    payload: dict[str, Any] = {"v": WIRE_VERSION, "node": node, "ts": iso_from_epoch(ts)}
    if seq_next is not None:
        payload["seq_next"] = int(seq_next)
    payload["cameras"] = {cam: health.as_dict() for cam, health in list(cameras.items())[:MAX_ITEMS]}
    payload["outbox"] = {k: int(outbox.get(k, 0)) for k in ("depth", "dropped_events", "dropped_snapshots")}
    payload["cpu_load"] = _finite_or_none(system.cpu_load)
    payload["temperature_c"] = _finite_or_none(system.temperature_c)
    payload["disk_free_mb"] = _finite_or_none(system.disk_free_mb)
    return payload
