"""Sending a station command to a node's camera (the command itself is `contract.commands`).

Commands are QoS 1 and never retained; nodes keep no session, so a command to an offline node would be
lost, and the API refuses it instead.
"""

from __future__ import annotations

import uuid

from central.ingest import Publish, PublishResult
from contract.commands import CommandName, command_payload
from contract.topics import topic_command


def send_command(
    publish: Publish,
    prefix: str,
    node: str,
    camera: str,
    command: CommandName,
    by: str,
    now: float,
    event_id: str | None = None,
) -> tuple[str, PublishResult]:
    """Publish one command; returns its id and whether it went out now or waits for the broker."""
    command_id = str(uuid.uuid4())
    body = command_payload(command, by, now, command_id, event_id)
    result = publish(topic_command(prefix, node, camera, command), body)
    return command_id, result
