"""The contract test: payloads the edge really produces pass central's validators, and central's own
test payloads pass the edge's JSON Schemas, so the two sides of the wire cannot drift apart silently.

`central` never imports `edge` (checked here too); only this test sees both.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import jsonschema
import pytest
from test_central_support import PREFIX, make_event

from contract import schemas, topics
from contract.commands import command_payload, parse_command
from contract.kinds import EVENT_KINDS
from contract.models import StatsPayload, StatusPayload
from contract.topics import parse_topic
from contract.topics import topic_command as command_topic
from contract.validate import Rejection, validate_event, validate_stats, validate_status
from edge.events import EventFactory
from edge.transport import wire

ROOT = Path(__file__).resolve().parents[1]


def _edge_event(kind: str, **kw: object) -> dict[str, object]:
    factory = EventFactory("n1", "gate", "Asia/Ho_Chi_Minh")
    event = factory.make(kind, "north_line", 1_795_000_000.25, **kw)  # type: ignore[arg-type]
    return wire.event_payload(event, 7, None)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_edge_event_kind_passes_central_validation(kind: str) -> None:
    payload = _edge_event(
        kind,
        phase="start",
        classes=("car", "motorcycle"),
        track_ids=(3, 4),
        confidence=0.7,
        box=(1.0, 2.0, 30.0, 40.0),
        measurements={"direction": "in", "count": 2, "per_class": {"car": 1}},
    )
    topic = parse_topic(topics.topic_event(PREFIX, "n1", "gate", kind), PREFIX)
    assert topic is not None
    result = validate_event(topic, wire.encode_event(payload))
    assert not isinstance(result, Rejection), result
    event, data = result
    assert event.kind == kind and event.seq == 7 and data["measurements"]["per_class"] == {"car": 1}


def test_edge_event_with_snapshot_and_empty_fields_passes() -> None:
    factory = EventFactory("n1", "gate")
    event = factory.make("intrusion", "yard", 1_795_000_000.0)
    snap = wire.SnapshotMeta.of(topics.topic_snapshot(PREFIX, "n1", "gate", event.event_id), b"\xff\xd8jpeg")
    payload = wire.event_payload(event, 1, snap)
    topic = parse_topic(topics.topic_event(PREFIX, "n1", "gate", "intrusion"), PREFIX)
    assert topic is not None
    result = validate_event(topic, wire.encode_event(payload))
    assert not isinstance(result, Rejection), result
    assert result[0].snapshot is not None and result[0].snapshot.sha256 == snap.sha256


def test_edge_status_and_stats_pass_central_validation() -> None:
    status = wire.status_payload("n1", "offline", 1_795_000_000.0)
    parsed = validate_status(parse_topic(f"{PREFIX}/n1/status", PREFIX), wire.encode(status))  # type: ignore[arg-type]
    assert isinstance(parsed, StatusPayload) and parsed.state == "offline"
    stats = wire.stats_payload(
        "n1",
        1_795_000_000.0,
        cameras={"gate": wire.CameraFigures(4.9, 31.5, 2, "lost", 3)},
        outbox={"depth": 5, "dropped_events": 0, "dropped_snapshots": 1},
        system=wire.SystemHealth(0.4, None, 1234.5),
        seq_next=42,
    )
    parsed_stats = validate_stats(parse_topic(f"{PREFIX}/n1/stats", PREFIX), wire.encode(stats))  # type: ignore[arg-type]
    assert isinstance(parsed_stats, StatsPayload)
    assert parsed_stats.cameras["gate"].stream_state == "lost" and parsed_stats.seq_next == 42


def test_central_test_payloads_satisfy_the_edge_json_schema() -> None:
    schema = schemas.load_schema("event")
    jsonschema.Draft202012Validator(schema).validate(make_event(1))
    jsonschema.Draft202012Validator(schema).validate(make_event(2, kind="crowding", phase="start", box=None))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "unknown_version"),
        ({"kind": "alien_landing"}, "unknown_kind"),
        ({"seq": "1"}, "invalid"),
        ({"seq": 0}, "invalid"),
        ({"confidence": 1.5}, "invalid"),
        ({"classes": ["car"] * 65}, "invalid"),
        ({"rule": "x" * 1025}, "invalid"),
        ({"event_id": "'; DROP TABLE events; --"}, "invalid"),
        ({"extra": 1}, "invalid"),
        ({"camera": "other"}, "topic_mismatch"),
        ({"measurements": {"nested": {"deeper": {"x": 1}}}}, "invalid"),
    ],
)
def test_central_rejects_what_the_schema_rejects(change: dict[str, object], reason: str) -> None:
    payload = {**make_event(1), **change}
    topic = parse_topic(f"{PREFIX}/n1/gate/events/line_crossing", PREFIX)
    assert topic is not None
    result = validate_event(topic, json.dumps(payload).encode())
    assert isinstance(result, Rejection) and result.reason == reason
    if reason in ("invalid", "unknown_kind", "unknown_version"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schemas.load_schema("event")).validate(payload)


def test_central_commands_are_what_the_edge_accepts() -> None:
    """The aggregator writes commands, the node reads them: both sides of that wire, too."""
    topic = command_topic(PREFIX, "n1", "gate", "take_reference")
    payload = command_payload("take_reference", "admin", 1_795_000_000.0)
    jsonschema.Draft202012Validator(schemas.load_schema("command")).validate(json.loads(payload))
    command = parse_command(topic, payload, PREFIX, "n1", frozenset({"gate"}))
    assert (command.camera, command.command, command.by) == ("gate", "take_reference", "admin")


def test_central_never_imports_edge() -> None:
    for path in sorted((ROOT / "central").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "edge" or n.startswith("edge.") for n in names), f"{path} imports {names}"


@pytest.mark.parametrize(("frame_seq", "expected"), [(None, None), (57, 57)])
def test_edge_frame_index_passes_central_and_may_be_absent(
    frame_seq: int | None, expected: int | None
) -> None:
    """`frame` is optional on the wire: a node that sends it and an older node that omits it both pass."""
    payload = _edge_event("line_crossing", frame_seq=frame_seq)
    topic = parse_topic(topics.topic_event(PREFIX, "n1", "gate", "line_crossing"), PREFIX)
    assert topic is not None
    result = validate_event(topic, wire.encode_event(payload))
    assert not isinstance(result, Rejection), result
    assert result[0].frame == expected
    older = {k: v for k, v in payload.items() if k != "frame"}
    assert not isinstance(validate_event(topic, wire.encode_event(older)), Rejection)
