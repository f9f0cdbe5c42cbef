"""Event video clips from a node to the station, chunked over MQTT (one home for their wire shape).

<prefix>/<node>/<camera>/clips/<event_id>/meta   ClipMeta JSON, QoS 1, never retained
<prefix>/<node>/<camera>/clips/<event_id>/<n>    raw MP4 bytes of chunk n (0-based), QoS 1

Why MQTT and not an HTTP upload: the node already holds broker credentials, an ACL that confines it to its
own prefix and TLS; a second credential and an inbound HTTP path on the aggregator would double what a
technician sets up. QoS 1 chunks of `CHUNK_BYTES` stay far under the broker's `max_packet_size` (2 MiB)
and a dropped rural uplink costs one chunk, not the whole clip: the station keeps what arrived and a
repeated request fills the gaps. The node publishes meta first (state `ready` with sha256 and sizes, or
`pending` / `missing` / `unsupported` with a reason), then the chunks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.limits import ID_PATTERN, UUID_PATTERN

CHUNK_BYTES = 128 * 1024
MAX_CLIP_BYTES = 64 * 1024 * 1024  # 15 s of 1080p H.264 is ~4-8 MiB; anything near this is refused
MAX_CHUNKS = MAX_CLIP_BYTES // CHUNK_BYTES
META_LEAF = "meta"

ClipState = Literal["ready", "pending", "missing", "unsupported"]
CLIP_STATES: tuple[ClipState, ...] = ("ready", "pending", "missing", "unsupported")

_ID_RE = re.compile(ID_PATTERN)
_UUID_RE = re.compile(UUID_PATTERN)


class ClipMeta(BaseModel):
    """Published by a node on <prefix>/<node>/<camera>/clips/<event_id>/meta, QoS 1, never retained.
    state ready: the chunks follow (sha256 of the whole file, its bytes, chunk count and size);
    pending: the clip is not written yet (the event is younger than post_s), it is sent when written;
    missing / unsupported: there will be no clip, `reason` says why."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, title="Roadwatch event clip meta (wire contract v1)"
    )

    v: Literal[1]
    event_id: str = Field(pattern=UUID_PATTERN)
    state: ClipState
    reason: str = Field(default="", max_length=300)
    sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    bytes: int = Field(default=0, ge=0, le=MAX_CLIP_BYTES)
    chunks: int = Field(default=0, ge=0, le=MAX_CHUNKS)
    chunk_bytes: int = Field(default=CHUNK_BYTES, ge=1024, le=CHUNK_BYTES)
    duration_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    start_ts: float = Field(default=0.0, ge=0.0)


def topic_clip_meta(prefix: str, node: str, camera: str, event_id: str) -> str:
    return f"{prefix}/{node}/{camera}/clips/{event_id}/{META_LEAF}"


def topic_clip_chunk(prefix: str, node: str, camera: str, event_id: str, index: int) -> str:
    return f"{prefix}/{node}/{camera}/clips/{event_id}/{index}"


def clip_filter(prefix: str) -> str:
    """The aggregator's subscription to every node's clip topics."""
    return f"{prefix}/+/+/clips/#"


@dataclass(frozen=True, slots=True)
class ClipTopic:
    """A parsed clip topic; `index` is None for the meta message."""

    node: str
    camera: str
    event_id: str
    index: int | None


def parse_clip_topic(topic: str, prefix: str) -> ClipTopic | None:
    """None for anything that is not a well-formed clip topic (a chunk index beyond MAX_CHUNKS included)."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) != 5 or parts[2] != "clips":
        return None
    node, camera, event_id, leaf = parts[0], parts[1], parts[3], parts[4]
    if not (_ID_RE.match(node) and _ID_RE.match(camera) and _UUID_RE.match(event_id)):
        return None
    if leaf == META_LEAF:
        return ClipTopic(node, camera, event_id, None)
    if not leaf.isascii() or not leaf.isdigit() or len(leaf) > 6 or int(leaf) >= MAX_CHUNKS:
        return None
    return ClipTopic(node, camera, event_id, int(leaf))


def split_clip(data: bytes, chunk_bytes: int = CHUNK_BYTES) -> tuple[str, list[bytes]]:
    """The sha256 of a clip file and its chunks, in order (an empty file has no chunks)."""
    chunks = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
    return hashlib.sha256(data).hexdigest(), chunks
