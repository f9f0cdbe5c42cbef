"""The payload models of contract v1 (pydantic, strict): what a receiver accepts, and the source of the
JSON Schemas in contract/schemas/.

Receivers are lenient where it costs nothing (any UTC offset in a timestamp, unknown stats keys from newer
nodes); the schemas document what a producer must write (UTC with milliseconds and `Z`). Numbers must be
finite and every string and collection stays within `contract.limits`, so a hostile or buggy publisher
can never make the station store something unbounded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from contract.kinds import EventKind
from contract.limits import ID_PATTERN, MAX_ITEMS, MAX_PAYLOAD_BYTES, MAX_STRING, UUID_PATTERN
from contract.states import NodeState, Phase, StreamState
from contract.times import LOCAL_TIME_PATTERN, TS_PATTERN, parse_ts

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=MAX_STRING)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


def _timestamp(value: str) -> str:
    parse_ts(value)
    return value


Timestamp = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_timestamp),
    WithJsonSchema({"type": "string", "pattern": TS_PATTERN, "description": "UTC, ISO 8601, ms and Z"}),
]
LocalTime = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_timestamp),
    WithJsonSchema({"type": "string", "maxLength": 64, "pattern": LOCAL_TIME_PATTERN}),
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_max_length=MAX_STRING)


class _Tolerant(BaseModel):
    """For health payloads, where a newer node may add keys an older station ignores."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, str_max_length=MAX_STRING)


class SnapshotRef(_Wire):
    """Where the event's JPEG is published and how the receiver checks it got the right bytes."""

    topic: Text = Field(description="<prefix>/<node>/<camera>/snapshots/<event_id>")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=1, le=MAX_PAYLOAD_BYTES * 1024)


Scalar = Int64 | Finite | Text | bool | None
Measurement = (
    Scalar
    | Annotated[list[Scalar], Field(max_length=MAX_ITEMS)]
    | Annotated[dict[Text, Scalar], Field(max_length=MAX_ITEMS)]
)


class EventPayload(_Wire):
    """Published on <prefix>/<node>/<camera>/events/<kind>, QoS 1, not retained. Delivery is at least once:
    receivers deduplicate by event_id; seq is per node, increasing by one per stored event, so a gap means
    a lost or dropped event. Every key is required."""

    model_config = ConfigDict(title="Roadwatch event (wire contract v1)")

    v: Literal[1] = Field(description="Wire contract version")
    event_id: str = Field(pattern=UUID_PATTERN, description="UUID4, unique; the deduplication key")
    seq: int = Field(ge=1, le=2**63 - 1, description="Per-node sequence number, from 1, +1 per stored event")
    kind: EventKind
    phase: Phase
    node: Id
    camera: Id
    rule: str = Field(min_length=1, max_length=MAX_STRING)
    ts: Timestamp = Field(description="UTC time of the observation (frame time); kept on replay")
    local_time: LocalTime = Field(description="The same instant in the node's time zone, with offset")
    classes: list[Text] = Field(max_length=MAX_ITEMS)
    track_ids: list[Int64] = Field(max_length=MAX_ITEMS)
    confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None
    box: Annotated[list[Finite], Field(min_length=4, max_length=4)] | None = Field(
        description="[x1, y1, x2, y2] in pixels of the analysed frame"
    )
    measurements: dict[Text, Measurement] = Field(
        max_length=MAX_ITEMS, description="Kind-specific figures: direction, count, dwell_s, speed_kmh..."
    )
    texts: dict[Text, Text] = Field(max_length=MAX_ITEMS, description="Display texts by language: vi, en")
    snapshot: SnapshotRef | None
    frame: int | None = Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="Index of the analysed frame: decode order of a file (0-based), frame counter of a live "
        "stream; optional (older nodes omit it). Matches counts to labelled frames without re-running",
    )

    sig: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9+/]{86}==$",
        description="Optional: base64 Ed25519 signature by the node's own key over the canonical JSON of this "
        "payload without sig (sorted keys, separators , and :, UTF-8); covers snapshot.sha256 too",
    )

    def epoch(self) -> float:
        return parse_ts(self.ts).timestamp()


class AckPayload(_Wire):
    """Retained on <prefix>/<node>/ack, QoS 1, written only by the aggregator and read only by that node
    (ACL). Every seq <= upto outside the missing ranges is stored. The node deletes an event from its outbox
    only when a watermark received after the event's PUBACK covers it, and resends what stays uncovered."""

    model_config = ConfigDict(title="Roadwatch storage acknowledgement (wire contract v1)")

    v: Literal[1]
    node: Id
    upto: int = Field(ge=0, le=2**63 - 1, description="Highest seq of the node's current counter stored")
    missing: list[Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]] = Field(
        max_length=256, description="Inclusive [first, last] seq ranges <= upto not stored (open gaps)"
    )
    ts: Timestamp


class StatusPayload(_Wire):
    """Retained on <prefix>/<node>/status, QoS 1. online: published on every connect; offline: the MQTT
    last will (ts is when the connection that registered it was set up); stopped: clean exit."""

    model_config = ConfigDict(title="Roadwatch node status (wire contract v1)")

    v: Literal[1]
    node: Id
    state: NodeState
    ts: Timestamp


class CameraStats(_Tolerant):
    """One camera's line in the stats payload; `ended` is a file source that reached its end."""

    fps: Finite | None = None
    inference_ms: Finite | None = None
    dropped_frames: int | None = None
    stream_state: StreamState = "starting"
    tracks: int | None = None


class StatsPayload(_Tolerant):
    """Published periodically on <prefix>/<node>/stats, QoS 1, not retained, best effort (not stored in
    the node's outbox); unknown extra keys are tolerated (newer nodes)."""

    model_config = ConfigDict(title="Roadwatch node stats (wire contract v1)")

    v: Literal[1]
    node: Id
    ts: Timestamp
    seq_next: int | None = Field(default=None, description="The seq the next stored event will get")
    cameras: dict[Id, CameraStats] = Field(default_factory=dict, max_length=MAX_ITEMS)
    outbox: dict[Text, Finite | None] | None = Field(
        default=None, description="depth, dropped_events, dropped_snapshots"
    )
    cpu_load: Finite | None = Field(default=None, description="1-minute load average")
    temperature_c: Finite | None = None
    disk_free_mb: Finite | None = None


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON Schema (draft 2020-12) as checked in under contract/schemas/."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
