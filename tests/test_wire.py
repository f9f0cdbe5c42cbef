"""The wire contract: payload builders against the JSON Schemas in contract/schemas/, and the limits."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import jsonschema
import numpy as np
import pytest

from contract.kinds import EVENT_KINDS as KINDS
from contract.limits import MAX_ITEMS, MAX_STRING
from contract.schemas import load_schema
from contract.topics import topic_event, topic_snapshot, topic_stats, topic_status
from edge.events import EventFactory
from edge.records import Event
from edge.transport.board import read_system_health
from edge.transport.wire import CameraFigures as CameraHealth
from edge.transport.wire import (
    SnapshotMeta,
    SystemHealth,
    encode,
    encode_event,
    event_payload,
    stats_payload,
    status_payload,
)

TS = 1795878000.123  # 2026-11-28T15:00:00.123Z


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": f"{kind} {rule}", "vi": f"{kind} {rule} (vi)"}


def make_event(kind: str = "line_crossing", **kw: Any) -> Event:
    factory = EventFactory("n1", "gate", "Asia/Ho_Chi_Minh", texts=_texts)
    args: dict[str, Any] = {
        "classes": ("car",),
        "track_ids": (12,),
        "confidence": 0.81,
        "box": (10.0, 20.0, 110.0, 220.0),
        "measurements": {"direction": "in", "direction_name": "north", "count": 3},
    }
    args.update(kw)
    return factory.make(kind, "north_line", TS, **args)


def validate(name: str, payload: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(load_schema(name)).validate(payload)


def test_event_payload_matches_contract() -> None:
    event = make_event()
    jpeg = b"\xff\xd8fake-jpeg\xff\xd9"
    meta = SnapshotMeta.of(topic_snapshot("roadwatch/v1", "n1", "gate", event.event_id), jpeg)
    payload = event_payload(event, 7, meta)
    validate("event", payload)
    assert payload["v"] == 1
    assert payload["seq"] == 7
    assert payload["ts"] == "2026-11-28T15:00:00.123Z"
    assert payload["local_time"] == "2026-11-28T22:00:00.123+07:00"
    assert payload["box"] == [10.0, 20.0, 110.0, 220.0]
    assert payload["snapshot"] == {
        "topic": f"roadwatch/v1/n1/gate/snapshots/{event.event_id}",
        "sha256": hashlib.sha256(jpeg).hexdigest(),
        "bytes": len(jpeg),
    }
    # Round trip through the encoder keeps the JSON identical.
    assert json.loads(encode_event(payload)) == payload


def test_every_kind_and_phase_validates_without_snapshot() -> None:
    for kind in KINDS:
        for phase in ("instant", "start", "update", "end"):
            validate(
                "event", event_payload(make_event(kind, phase=phase, box=None, confidence=None), 1, None)
            )


def test_kinds_tuple_is_the_schema_enum() -> None:
    assert list(KINDS) == load_schema("event")["properties"]["kind"]["enum"]


def test_payload_is_clamped_to_central_limits() -> None:
    event = make_event(
        classes=tuple(["car"] * 100),
        track_ids=tuple(range(100)),
        measurements={
            "speed_kmh": np.float32(42.5),
            "count": np.int64(5),
            "bad": float("nan"),
            "inf": math.inf,
            "name": "x" * 5000,
            "per_class": {"car": np.int64(2), "bus": 1},
            "history": list(range(200)),
        },
    )
    payload = event_payload(event, 1, None)
    validate("event", payload)
    m = payload["measurements"]
    assert m["speed_kmh"] == 42.5 and type(m["speed_kmh"]) is float
    assert m["count"] == 5 and type(m["count"]) is int
    assert m["bad"] is None and m["inf"] is None
    assert len(m["name"]) == MAX_STRING
    assert m["per_class"] == {"car": 2, "bus": 1}
    assert len(m["history"]) == MAX_ITEMS
    assert len(payload["track_ids"]) == MAX_ITEMS and len(payload["classes"]) == MAX_ITEMS


def test_non_finite_box_and_confidence_become_null() -> None:
    payload = event_payload(make_event(box=(0.0, 1.0, float("inf"), 4.0), confidence=None), 1, None)
    assert payload["box"] is None and payload["confidence"] is None
    validate("event", payload)


def test_encoder_refuses_nan_and_oversized_events() -> None:
    with pytest.raises(ValueError):
        encode({"x": float("nan")})
    payload = event_payload(make_event(), 1, None)
    payload["texts"] = {f"l{i}": "y" * MAX_STRING for i in range(MAX_ITEMS)}
    with pytest.raises(ValueError, match="over 65536"):
        encode_event(payload)


def test_schema_rejects_what_central_must_refuse() -> None:
    good = event_payload(make_event(), 1, None)
    for bad in (
        {**good, "kind": "unknown_kind"},
        {**good, "extra": 1},
        {**good, "seq": 0},
        {**good, "v": 2},
        {k: v for k, v in good.items() if k != "event_id"},
        {**good, "ts": "2026-11-28 15:00:00"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate("event", bad)


def test_topics() -> None:
    assert topic_event("roadwatch/v1", "n1", "gate", "speeding") == "roadwatch/v1/n1/gate/events/speeding"
    assert topic_snapshot("p", "n1", "gate", "abc") == "p/n1/gate/snapshots/abc"
    assert topic_status("roadwatch/v1", "n1") == "roadwatch/v1/n1/status"
    assert topic_stats("roadwatch/v1", "n1") == "roadwatch/v1/n1/stats"


@pytest.mark.parametrize("state", ["online", "offline", "stopped"])
def test_status_payload(state: str) -> None:
    payload = status_payload("n1", state, TS)  # type: ignore[arg-type]
    validate("status", payload)
    assert payload == {"v": 1, "node": "n1", "state": state, "ts": "2026-11-28T15:00:00.123Z"}


def test_status_schema_refuses_unknown_state() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("status", {"v": 1, "node": "n1", "state": "sleeping", "ts": "2026-11-28T15:00:00.123Z"})


def test_stats_payload_validates_with_real_system_health(tmp_path: Any) -> None:
    health = read_system_health(tmp_path, thermal=tmp_path / "no-such-sensor")
    assert health.temperature_c is None
    assert health.disk_free_mb is not None and health.disk_free_mb > 0
    payload = stats_payload(
        "n1",
        TS,
        cameras={
            "gate": CameraHealth(fps=4.96, inference_ms=33.2, dropped_frames=3, stream_state="ok", tracks=5),
            "market": CameraHealth(
                fps=float("nan"), inference_ms=0.0, dropped_frames=0, stream_state="lost", tracks=0
            ),
        },
        outbox={"depth": 4, "dropped_events": 1, "dropped_snapshots": 2},
        system=health,
        seq_next=42,
    )
    validate("stats", payload)
    assert payload["cameras"]["market"]["fps"] == 0.0
    assert payload["outbox"] == {"depth": 4, "dropped_events": 1, "dropped_snapshots": 2}
    assert payload["seq_next"] == 42


def test_stats_payload_without_optional_health() -> None:
    payload = stats_payload("n1", TS, cameras={}, outbox={}, system=SystemHealth(None, None, None))
    validate("stats", payload)
    assert "seq_next" not in payload
    assert payload["cpu_load"] is None and payload["outbox"]["depth"] == 0


@pytest.mark.parametrize(("frame_seq", "expected"), [(None, None), (0, 0), (1234, 1234)])
def test_event_payload_carries_frame_index(frame_seq: int | None, expected: int | None) -> None:
    """The analysed frame's index travels with the event so counts can be matched to labelled frames."""
    payload = event_payload(make_event(frame_seq=frame_seq), 1, None)
    validate("event", payload)
    assert payload["frame"] == expected
