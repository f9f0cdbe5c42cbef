"""The MQTT wire contract v1 as central reads it: topic parsing and payload validation.

Central keeps its own models of the contract (it never imports `edge`); tests/test_central_contract.py
feeds the edge's real payloads through these validators so the two sides cannot drift apart silently.
Every check that can fail on hostile input returns a `Rejection` with a short reason instead of raising,
because one bad publisher must never stop ingest for everybody else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_STRING = 1024
MAX_ITEMS = 64

EventKind = Literal[
    "line_crossing",
    "count_summary",
    "zone_occupancy",
    "crowding",
    "loitering",
    "intrusion",
    "stopped_vehicle",
    "wrong_way",
    "speeding",
    "suspected_collision",
    "stream_lost",
    "stream_restored",
    "frozen_picture",
    "camera_blocked",
    "camera_defocused",
    "camera_moved",
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
CENTRAL_KINDS: tuple[str, ...] = ("node_offline", "camera_stream_lost")

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,48}$")]
Text = Annotated[str, StringConstraints(max_length=MAX_STRING)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_max_length=MAX_STRING)


def parse_ts(value: str) -> datetime:
    """ISO 8601 with an offset or `Z` (Python 3.10's fromisoformat does not take `Z`)."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset or Z")
    return parsed


class _Timestamped(_Wire):
    ts: Text

    @field_validator("ts")
    @classmethod
    def _iso(cls, value: str) -> str:
        parse_ts(value)
        return value


class SnapshotRef(_Wire):
    topic: Text
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=1, le=MAX_PAYLOAD_BYTES * 1024)


Scalar = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | Finite | Text | bool | None
Measurement = (
    Scalar
    | Annotated[list[Scalar], Field(max_length=MAX_ITEMS)]
    | Annotated[dict[Text, Scalar], Field(max_length=MAX_ITEMS)]
)


class EventPayload(_Timestamped):
    """An event as published on `<prefix>/<node>/<camera>/events/<kind>`; every key is required."""

    v: Literal[1]
    event_id: str = Field(pattern=_UUID)
    seq: int = Field(ge=1, le=2**63 - 1)
    kind: EventKind
    phase: Literal["instant", "start", "update", "end"]
    node: Id
    camera: Id
    rule: str = Field(min_length=1, max_length=MAX_STRING)
    local_time: str = Field(max_length=64)
    classes: list[Text] = Field(max_length=MAX_ITEMS)
    track_ids: list[Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]] = Field(max_length=MAX_ITEMS)
    confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None
    box: Annotated[list[Finite], Field(min_length=4, max_length=4)] | None
    measurements: dict[Text, Measurement] = Field(max_length=MAX_ITEMS)
    texts: dict[Text, Text] = Field(max_length=MAX_ITEMS)
    snapshot: SnapshotRef | None
    # Optional (older nodes omit it): the frame's decode index (file) or frame counter (live stream).
    frame: int | None = Field(default=None, ge=0, le=2**63 - 1)
    # Optional: the node's Ed25519 signature (central/signatures.py); checked by the station's policy.
    sig: str | None = Field(default=None, pattern=r"^[A-Za-z0-9+/]{86}==$")

    @field_validator("local_time")
    @classmethod
    def _iso_local(cls, value: str) -> str:
        parse_ts(value)
        return value

    def epoch(self) -> float:
        return parse_ts(self.ts).timestamp()


class StatusPayload(_Timestamped):
    """Retained availability on `<prefix>/<node>/status`; `offline` is the node's MQTT last will."""

    v: Literal[1]
    node: Id
    state: Literal["online", "offline", "stopped"]


class CameraStats(_Wire):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, str_max_length=MAX_STRING)

    fps: Finite | None = None
    inference_ms: Finite | None = None
    dropped_frames: int | None = None
    stream_state: Literal["ok", "lost", "frozen", "starting"] = "starting"
    tracks: int | None = None


class StatsPayload(_Timestamped):
    """Periodic health on `<prefix>/<node>/stats`; unknown extra keys are tolerated (newer nodes)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, str_max_length=MAX_STRING)

    v: Literal[1]
    node: Id
    seq_next: int | None = None
    cameras: dict[Id, CameraStats] = Field(default_factory=dict, max_length=MAX_ITEMS)
    outbox: dict[Text, Finite | None] | None = None
    cpu_load: Finite | None = None
    temperature_c: Finite | None = None
    disk_free_mb: Finite | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused; `reason` is a short counter name, `detail` a log line."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed contract topic: `channel` is events, snapshots, status or stats."""

    channel: Literal["events", "snapshots", "status", "stats"]
    node: str
    camera: str = ""
    leaf: str = ""  # the kind for events, the event id for snapshots


_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")


def parse_topic(topic: str, prefix: str) -> Topic | None:
    """Split a topic under `prefix`; None for anything that is not part of contract v1."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if not parts or not _ID_RE.match(parts[0]):
        return None
    if len(parts) == 2 and parts[1] in ("status", "stats"):
        return Topic(parts[1], parts[0])  # type: ignore[arg-type]
    if len(parts) == 4 and parts[2] in ("events", "snapshots") and _ID_RE.match(parts[1]):
        return Topic(parts[2], parts[0], parts[1], parts[3])  # type: ignore[arg-type]
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def decode_json(payload: bytes) -> dict[str, Any] | Rejection:
    """Bytes -> JSON object, refusing oversized, non-UTF-8, non-JSON, NaN/Infinity and non-object payloads."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", str(exc))
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError, so is the NaN refusal
        reason = "non_finite" if "non-finite" in str(exc) else "not_json"
        return Rejection(reason, str(exc))
    except RecursionError:
        return Rejection("not_json", "nested too deeply")
    if not isinstance(data, dict):
        return Rejection("not_object", f"top level is {type(data).__name__}")
    if data.get("v") != 1 or isinstance(data.get("v"), bool):
        return Rejection("unknown_version", f"v={str(data.get('v'))[:32]!r}")
    return data


def _invalid(exc: ValidationError) -> Rejection:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return Rejection("invalid", f"{exc.error_count()} error(s), first {where}: {first['msg']}"[:300])


def validate_event(topic: Topic, payload: bytes) -> tuple[EventPayload, dict[str, Any]] | Rejection:
    """Check an event message; returns the model and the JSON object it came from."""
    data = decode_json(payload)
    if isinstance(data, Rejection):
        return data
    if data.get("kind") not in EVENT_KINDS:
        return Rejection("unknown_kind", f"kind={str(data.get('kind'))[:48]!r}")
    try:
        event = EventPayload.model_validate(data)
    except ValidationError as exc:
        return _invalid(exc)
    if (event.node, event.camera, event.kind) != (topic.node, topic.camera, topic.leaf):
        return Rejection(
            "topic_mismatch", f"payload {event.node}/{event.camera}/{event.kind} on another topic"
        )
    return event, data


def validate_status(topic: Topic, payload: bytes) -> StatusPayload | Rejection:
    data = decode_json(payload)
    if isinstance(data, Rejection):
        return data
    try:
        status = StatusPayload.model_validate(data)
    except ValidationError as exc:
        return _invalid(exc)
    return status if status.node == topic.node else Rejection("topic_mismatch", f"status of {status.node}")


def validate_stats(topic: Topic, payload: bytes) -> StatsPayload | Rejection:
    data = decode_json(payload)
    if isinstance(data, Rejection):
        return data
    try:
        stats = StatsPayload.model_validate(data)
    except ValidationError as exc:
        return _invalid(exc)
    return stats if stats.node == topic.node else Rejection("topic_mismatch", f"stats of {stats.node}")


def validate_snapshot(topic: Topic, payload: bytes) -> bytes | Rejection:
    """A snapshot must look like a JPEG (SOI marker) and the leaf must be an event id."""
    if not re.match(_UUID, topic.leaf):
        return Rejection("invalid", "snapshot topic does not end in an event id")
    if len(payload) > 8 * 1024 * 1024:
        return Rejection("too_large", f"snapshot of {len(payload)} bytes")
    if not payload.startswith(b"\xff\xd8"):
        return Rejection("not_jpeg", "snapshot does not start with a JPEG marker")
    return payload


def iso_from_epoch(ts: float) -> str:
    """UTC ISO 8601 with milliseconds and Z, the contract's timestamp format."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
