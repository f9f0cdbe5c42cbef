"""Commands from the station to a node's camera: the only messages a node reads.

Topic `<prefix>/<node>/<camera>/commands/<command>`, QoS 1, never retained (a retained command would run
again at every reconnect). One command exists: `take_reference`, "accept the present view": after a
technician re-aims or refocuses a camera on purpose, the health checks build a new reference so
`camera_moved` / `camera_defocused` end instead of staying active until the next restart. `upload_clip`
(with `event_id`) asks the node to send the event's video clip back in chunks (contract/clips.py). The station
writes with `command_payload`, the node reads with `parse_command`; anything else on the topic is refused
with a `CommandError` whose reason is safe to log.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.limits import MAX_COMMAND_BYTES, UUID_PATTERN, WIRE_VERSION
from contract.models import Timestamp
from contract.times import iso_from_epoch

CommandName = Literal["take_reference", "upload_clip"]
COMMANDS: tuple[CommandName, ...] = get_args(CommandName)


class CommandPayload(BaseModel):
    """Published by the station on <prefix>/<node>/<camera>/commands/<command>, QoS 1, never retained.
    take_reference: accept the present view as the health reference (after a camera was re-aimed or
    refocused on purpose). upload_clip: send the clip of `event_id` on the node's clip topics."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        title="Roadwatch command to a node's camera (wire contract v1)",
    )

    v: Literal[1]
    command_id: str = Field(min_length=1, max_length=64)
    command: CommandName
    issued_at: Timestamp
    by: str = Field(max_length=128)
    event_id: str | None = Field(default=None, pattern=UUID_PATTERN)


class CommandError(ValueError):
    """A message on the command topic that cannot be run; the reason is safe to log."""


@dataclass(frozen=True, slots=True)
class Command:
    camera: str
    command: CommandName
    command_id: str
    by: str
    event_id: str = ""  # upload_clip only


def command_payload(
    command: CommandName, by: str, now: float, command_id: str | None = None, event_id: str | None = None
) -> bytes:
    body = CommandPayload(
        v=1,
        command_id=command_id or str(uuid.uuid4()),
        command=command,
        issued_at=iso_from_epoch(now),
        by=by[:128],
        event_id=event_id,
    )
    return body.model_dump_json(exclude_none=True).encode("utf-8")


def _topic_parts(topic: str, prefix: str, node: str, cameras: frozenset[str]) -> tuple[str, CommandName]:
    head = f"{prefix}/{node}/"
    parts = topic[len(head) :].split("/") if topic.startswith(head) else []
    if len(parts) != 3 or parts[1] != "commands":
        raise CommandError(f"not a command topic of node {node}: {topic[:200]!r}")
    camera, name = parts[0], parts[2]
    if camera not in cameras:
        raise CommandError(f"unknown camera {camera[:64]!r}")
    if name not in COMMANDS:
        raise CommandError(f"unknown command {name[:64]!r} (known: {', '.join(COMMANDS)})")
    return camera, name


def parse_command(topic: str, payload: bytes, prefix: str, node: str, cameras: frozenset[str]) -> Command:
    """Validate a command message for this node; CommandError says why it is refused."""
    camera, name = _topic_parts(topic, prefix, node, cameras)
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"payload of {len(payload)} bytes is over {MAX_COMMAND_BYTES}")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CommandError("payload is not a JSON object")
    if body.get("v") != WIRE_VERSION:
        raise CommandError(f"unsupported version {str(body.get('v'))[:16]!r}")
    if body.get("command") != name:
        raise CommandError("payload command differs from the topic")
    command_id, by = body.get("command_id"), body.get("by")
    if not isinstance(command_id, str) or not 0 < len(command_id) <= 64:
        raise CommandError("command_id must be a string of 1..64 characters")
    if not isinstance(by, str) or len(by) > 128:
        raise CommandError("by must be a string of at most 128 characters")
    try:
        parsed = CommandPayload.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CommandError(f"invalid command, {where}: {first['msg']}"[:300]) from None
    if (name == "upload_clip") != (parsed.event_id is not None):
        raise CommandError("event_id is required by upload_clip and only by it")
    return Command(camera=camera, command=name, command_id=command_id, by=by, event_id=parsed.event_id or "")
