"""MQTT topics of contract v1: builders for the publisher side and one parser for the receiver side.

<prefix>/<node>/<camera>/events/<kind>        event, QoS 1
<prefix>/<node>/<camera>/snapshots/<event_id> JPEG, QoS 1
<prefix>/<node>/status                        retained availability (last will: offline)
<prefix>/<node>/stats                         periodic health
<prefix>/<node>/<camera>/commands/<command>   station -> node, QoS 1, never retained
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from contract.limits import ID_PATTERN

RESERVED_NODE_IDS = frozenset({"alerts"})  # <prefix>/alerts/# is where central forwards alerts

_ID_RE = re.compile(ID_PATTERN)


def topic_event(prefix: str, node: str, camera: str, kind: str) -> str:
    return f"{prefix}/{node}/{camera}/events/{kind}"


def topic_snapshot(prefix: str, node: str, camera: str, event_id: str) -> str:
    return f"{prefix}/{node}/{camera}/snapshots/{event_id}"


def topic_status(prefix: str, node: str) -> str:
    return f"{prefix}/{node}/status"


def topic_stats(prefix: str, node: str) -> str:
    return f"{prefix}/{node}/stats"


def topic_ack(prefix: str, node: str) -> str:
    """The aggregator's retained storage watermark for one node (AckPayload; only that node reads it)."""
    return f"{prefix}/{node}/ack"


def topic_command(prefix: str, node: str, camera: str, command: str) -> str:
    return f"{prefix}/{node}/{camera}/commands/{command}"


def command_filter(prefix: str, node: str) -> str:
    """The subscription of one node: commands to any of its cameras."""
    return f"{prefix}/{node}/+/commands/+"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed node-to-station topic; `leaf` is the kind for events, the event id for snapshots."""

    channel: Literal["events", "snapshots", "status", "stats"]
    node: str
    camera: str = ""
    leaf: str = ""


def parse_topic(topic: str, prefix: str) -> Topic | None:
    """Split a topic under `prefix`; None for anything a node does not publish in contract v1 (commands
    included: the station reads its own commands back under a wildcard and must ignore them)."""
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
