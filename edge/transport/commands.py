"""Commands from the station to a node's camera, over MQTT: the only messages an edge node reads.

Topic `<prefix>/<node>/<camera>/commands/<command>`, QoS 1, never retained (a retained command would run
again at every reconnect). Payload (JSON, edge/schemas/command.schema.json):
`{"v": 1, "command_id": "<uuid>", "command": "take_reference", "issued_at": "<UTC ISO>", "by": "<user>"}`.

One command exists: `take_reference`, "accept the present view": after a technician re-aims or refocuses
a camera on purpose, the health checks build a new reference so `camera_moved` / `camera_defocused` end
instead of staying active until the next restart. Anything else on the topic (bad JSON, an unknown
command or camera, another node's topic) is logged, truncated, and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from edge.transport.wire import WIRE_VERSION

CommandName = Literal["take_reference"]
COMMANDS: tuple[CommandName, ...] = ("take_reference",)
MAX_COMMAND_BYTES = 4096


class CommandError(ValueError):
    """A message on the command topic that cannot be run; the reason is safe to log."""


@dataclass(frozen=True, slots=True)
class Command:
    camera: str
    command: CommandName
    command_id: str
    by: str


def topic_command(prefix: str, node: str, camera: str, command: str) -> str:
    return f"{prefix}/{node}/{camera}/commands/{command}"


def command_filter(prefix: str, node: str) -> str:
    """The subscription of one node: commands to any of its cameras."""
    return f"{prefix}/{node}/+/commands/+"


def parse_command(topic: str, payload: bytes, prefix: str, node: str, cameras: frozenset[str]) -> Command:
    """Validate a command message for this node; CommandError says why it is refused."""
    head = f"{prefix}/{node}/"
    parts = topic[len(head) :].split("/") if topic.startswith(head) else []
    if len(parts) != 3 or parts[1] != "commands":
        raise CommandError(f"not a command topic of node {node}: {topic[:200]!r}")
    camera, name = parts[0], parts[2]
    if camera not in cameras:
        raise CommandError(f"unknown camera {camera[:64]!r}")
    if name not in COMMANDS:
        raise CommandError(f"unknown command {name[:64]!r} (known: {', '.join(COMMANDS)})")
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
    return Command(camera=camera, command=name, command_id=command_id, by=by)
