"""Request and response bodies of the HTTP API, so /openapi.json documents what each endpoint returns.

An event is the contract payload (docs/mqtt-api.md) plus what the station adds; only the fields every
event has are declared and the rest passes through unchanged (`extra="allow"`), so the API keeps
returning whatever a newer contract version adds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from central.signatures import SigStatus

Number = int | float  # int first: a count stays an int in the JSON

# Every numeric parameter is bounded: an unbounded offset of 2**63 overflowed the database's integer and
# answered 500. A page is at most 500 rows; no table here grows near a billion rows.
MAX_OFFSET = 1_000_000_000
MAX_ID = 2**63 - 1
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")]
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
ID_PATTERN = r"^[A-Za-z0-9_-]{1,48}$"  # node and camera ids of the contract; nothing that could be a topic
NodeId = Annotated[str, Path(pattern=ID_PATTERN)]


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AckBody(BaseModel):
    note: str = Field(default="", max_length=500)


class Done(BaseModel):
    status: str


class Session(BaseModel):
    token: str
    role: str
    username: str


class Me(BaseModel):
    username: str
    role: str
    scope: list[str] | None = Field(default=None, description='"node/*" and "node/camera"; null: all')


class AckInfo(BaseModel):
    by: str
    at: str | None
    note: str | None


class Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: str
    node: str
    camera: str
    kind: str
    ts: str = Field(description="The node's time of the event (UTC ISO 8601)")
    received_at: str = Field(description="When the station stored it")
    snapshot_url: str | None
    snapshot_expired: bool = Field(default=False, description="The snapshot was deleted by retention")
    ack: AckInfo | None
    sig_status: SigStatus | None = Field(
        default=None,
        description="The node's Ed25519 signature as checked on arrival (central/signatures.py): valid, "
        "unsigned, unknown_key (no key registered for the node) or invalid; null: not checked "
        "(signatures.policy off, or an event the station made itself)",
    )


class EventPage(BaseModel):
    items: list[Event]
    total: int


class Count(BaseModel):
    hour: str
    node: str
    camera: str
    rule: str
    direction: Any
    cls: Any = Field(alias="class")
    count: int


class CountList(BaseModel):
    items: list[Count]


class CameraState(BaseModel):
    camera: str
    stream_state: str | None
    fps: Number | None
    inference_ms: Number | None
    dropped_frames: Number | None


class Node(BaseModel):
    node: str
    state: str
    state_since: str | None
    last_seen: str | None
    cameras: list[CameraState]


class NodeList(BaseModel):
    items: list[Node]


class CommandSent(BaseModel):
    status: str
    command_id: str


class ClipStatus(BaseModel):
    """Where an event's clip stands (central/api/clips.py); `command_id` when a request was just sent."""

    state: str
    reason: str = ""
    bytes: int = 0
    duration_s: float = 0.0
    start_epoch: float = 0.0
    codec: str = ""  # of a stored clip: h264 | hevc (most browsers cannot play H.265 in <video>)
    plays_in_browser: bool = False
    command_id: str | None = None


class Gap(BaseModel):
    node: str
    first_seq: int
    last_seq: int
    detected_at: str


class Status(BaseModel):
    """Ingest counters (see central/service.py) plus what the store holds."""

    model_config = ConfigDict(extra="allow")

    events_stored: int
    sequence_gaps: list[Gap]


class DeadLetter(BaseModel):
    id: int
    webhook: str
    rule: str
    event_id: str
    attempts: int
    last_error: str | None
    created_at: str
    failed_at: str


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    total: int


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str | None
    detail: str | None
    remote: str | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    total: int
