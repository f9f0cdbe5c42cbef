"""Commands from the station to an edge camera, over MQTT (contract: edge/schemas/command.schema.json).

One exists: `take_reference`, "accept the present view", for after a technician re-aimed or refocused a
camera on purpose, so `camera_moved` / `camera_defocused` end instead of staying active until the node
restarts. Commands are QoS 1 and never retained; nodes keep no session, so a command to an offline node
would be lost, and the API refuses it instead.
"""

from __future__ import annotations

import json
import uuid
from typing import Literal

from central.contract import iso_from_epoch
from central.ingest import Publish, PublishResult

CommandName = Literal["take_reference"]


def command_topic(prefix: str, node: str, camera: str, command: CommandName) -> str:
    return f"{prefix}/{node}/{camera}/commands/{command}"


def command_payload(command: CommandName, by: str, now: float, command_id: str | None = None) -> bytes:
    body = {
        "v": 1,
        "command_id": command_id or str(uuid.uuid4()),
        "command": command,
        "issued_at": iso_from_epoch(now),
        "by": by[:128],
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def send_command(
    publish: Publish, prefix: str, node: str, camera: str, command: CommandName, by: str, now: float
) -> tuple[str, PublishResult]:
    """Publish one command; returns its id and whether it went out now or waits for the broker."""
    command_id = str(uuid.uuid4())
    result = publish(
        command_topic(prefix, node, camera, command), command_payload(command, by, now, command_id)
    )
    return command_id, result
