"""Station commands as the node reads them: one good message, and every way a bad one is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.commands import Command, CommandError, parse_command
from contract.topics import command_filter, topic_command

PREFIX = "roadwatch/v1"
CAMERAS = frozenset({"gate", "market"})
GOOD: dict[str, Any] = {
    "v": 1,
    "command_id": "5b8f0c1e-7a0e-4a34-9a53-1c1c8e1f0a11",
    "command": "take_reference",
    "issued_at": "2026-11-28T15:00:00.000Z",
    "by": "admin",
}


def _parse(topic: str, body: Any) -> Command:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_command(topic, payload, PREFIX, "n1", CAMERAS)


def test_a_good_command_names_its_camera_and_sender() -> None:
    topic = topic_command(PREFIX, "n1", "gate", "take_reference")
    assert topic == "roadwatch/v1/n1/gate/commands/take_reference"
    assert command_filter(PREFIX, "n1") == "roadwatch/v1/n1/+/commands/+"
    assert _parse(topic, GOOD) == Command("gate", "take_reference", GOOD["command_id"], "admin")


TOPIC = "roadwatch/v1/n1/gate/commands/take_reference"


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        ("roadwatch/v1/n2/gate/commands/take_reference", GOOD, "not a command topic of node n1"),
        ("roadwatch/v1/n1/gate/events/take_reference", GOOD, "not a command topic"),
        ("roadwatch/v1/n1/gate/commands/take_reference/x", GOOD, "not a command topic"),
        ("roadwatch/v1/n1/yard/commands/take_reference", GOOD, "unknown camera 'yard'"),
        ("roadwatch/v1/n1/gate/commands/reboot", {**GOOD, "command": "reboot"}, "unknown command 'reboot'"),
        (TOPIC, b"\xff\xfe not utf-8", "not UTF-8 JSON"),
        (TOPIC, b'{"v": 1, "command_id": ', "not UTF-8 JSON"),
        (TOPIC, [GOOD], "not a JSON object"),
        (TOPIC, {**GOOD, "v": 2}, "unsupported version"),
        (TOPIC, {**GOOD, "command": "reboot"}, "differs from the topic"),
        (TOPIC, {**GOOD, "command_id": ""}, "command_id must be"),
        (TOPIC, {**GOOD, "command_id": 7}, "command_id must be"),
        (TOPIC, {**GOOD, "by": None}, "by must be"),
        (TOPIC, {**GOOD, "by": "x" * 5000}, "payload of"),
    ],
)
def test_bad_commands_are_refused_with_a_reason(topic: str, body: Any, reason: str) -> None:
    with pytest.raises(CommandError, match=reason):
        _parse(topic, body)
