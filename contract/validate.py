"""Checking a received message against the contract: bytes in, a model or a `Rejection` out.

Every check that can fail on hostile input returns a `Rejection` with a short reason instead of raising,
because one bad publisher must never stop ingest for everybody else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import from_json

from contract.kinds import EVENT_KINDS
from contract.limits import MAX_PAYLOAD_BYTES, MAX_SNAPSHOT_BYTES, UUID_PATTERN, WIRE_VERSION
from contract.models import EventPayload, StatsPayload, StatusPayload
from contract.topics import Topic


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused; `reason` is a short counter name, `detail` a log line."""

    reason: str
    detail: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def decode_json(payload: bytes) -> dict[str, Any] | Rejection:
    """Bytes -> JSON object, refusing oversized, non-UTF-8, non-JSON, NaN/Infinity and non-object payloads."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:  # the fast parser (a third of json.loads' cost) takes what it can; any doubt goes the slow way
        data = from_json(payload, allow_inf_nan=False)
    except (ValueError, RecursionError):
        return _decode_slowly(payload)
    return _checked_object(data)


def _decode_slowly(payload: bytes) -> dict[str, Any] | Rejection:
    """The standard library's parser: it says why a payload is refused, and accepts what it always did
    (lone surrogate escapes, which the fast parser refuses)."""
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
    return _checked_object(data)


def _checked_object(data: Any) -> dict[str, Any] | Rejection:
    if not isinstance(data, dict):
        return Rejection("not_object", f"top level is {type(data).__name__}")
    if data.get("v") != WIRE_VERSION or isinstance(data.get("v"), bool):
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


NodePayload = TypeVar("NodePayload", StatusPayload, StatsPayload)


def _validate_node_payload(
    model: type[NodePayload], what: str, topic: Topic, payload: bytes
) -> NodePayload | Rejection:
    """Status and stats: a model that names its node, which must be the topic's node."""
    data = decode_json(payload)
    if isinstance(data, Rejection):
        return data
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        return _invalid(exc)
    return body if body.node == topic.node else Rejection("topic_mismatch", f"{what} of {body.node}")


def validate_status(topic: Topic, payload: bytes) -> StatusPayload | Rejection:
    return _validate_node_payload(StatusPayload, "status", topic, payload)


def validate_stats(topic: Topic, payload: bytes) -> StatsPayload | Rejection:
    return _validate_node_payload(StatsPayload, "stats", topic, payload)


def validate_snapshot(topic: Topic, payload: bytes) -> bytes | Rejection:
    """A snapshot must look like a JPEG (SOI marker) and the leaf must be an event id."""
    if not re.match(UUID_PATTERN, topic.leaf):
        return Rejection("invalid", "snapshot topic does not end in an event id")
    if len(payload) > MAX_SNAPSHOT_BYTES:
        return Rejection("too_large", f"snapshot of {len(payload)} bytes")
    if not payload.startswith(b"\xff\xd8"):
        return Rejection("not_jpeg", "snapshot does not start with a JPEG marker")
    return payload
