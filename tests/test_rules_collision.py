"""Suspected collision: contact followed by an abrupt stop fires; queueing, passing and lone braking do not."""

from __future__ import annotations

from typing import Any

import pytest
from rules_paths import Box, Obj, anchors, build, path, run

# 1 px = 0.05 m: 40 km/h is 11.1 m/s = 22 px per frame at 10 fps
CALIBRATION = {
    "image_points": [[0, 0], [1000, 0], [1000, 1000], [0, 1000]],
    "ground_points_m": [[0, 0], [50, 0], [50, 50], [0, 50]],
}
RULE = {"kind": "suspected_collision", "name": "crash"}


def hold(x: float, y: float, frames: int) -> list[Box]:
    return anchors([(x, y)] * frames)


HEAD_ON = [
    Obj(1, "car", path((400, 150), (400, 480), 16) + hold(400, 480, 25)),  # 22 px/frame, then stops dead
    Obj(2, "car", path((400, 850), (400, 520), 16) + hold(400, 520, 25)),  # boxes overlap: IoU ~0.11
]
REAR_END_RUNAWAY = [  # the struck car stops, the other drives off
    Obj(1, "car", path((400, 150), (400, 480), 16) + hold(400, 480, 25)),
    Obj(2, "motorcycle", path((400, 850), (400, 520), 16) + path((400, 520), (400, 900), 25)),
]

CASES: list[tuple[str, dict[str, Any], list[Obj], list[tuple[int, ...]]]] = [
    ("head-on, both stop", {}, HEAD_ON, [(1, 2)]),
    ("head-on, both stop, both required", {"min_stopped_tracks": 2}, HEAD_ON, [(1, 2)]),
    ("one stops after contact, other drives off", {}, REAR_END_RUNAWAY, [(1, 2)]),
    ("one stops, but both required", {"min_stopped_tracks": 2}, REAR_END_RUNAWAY, []),
    (
        "two cars queueing slowly",
        {},
        [
            Obj(1, "car", hold(400, 500, 60)),
            Obj(2, "car", path((400, 600), (400, 535), 24) + hold(400, 535, 30)),  # 5 km/h, stops touching
        ],
        [],
    ),
    (
        "fast cars passing close without stopping",
        {},
        [
            Obj(1, "car", path((380, 100), (380, 900), 37)),
            Obj(2, "car", path((410, 900), (410, 100), 37)),
        ],
        [],
    ),
    (
        "hard braking with nobody near",
        {},
        [Obj(1, "car", path((400, 150), (400, 480), 16) + hold(400, 480, 25))],
        [],
    ),
    (
        "stop 4 s after the contact (post_window_s is 3 s)",
        {},
        [
            Obj(
                1,
                "car",
                path((400, 150), (400, 480), 16) + path((400, 490), (400, 890), 41) + hold(400, 890, 20),
            ),
            Obj(2, "car", path((420, 850), (420, 520), 16) + path((420, 500), (420, 100), 20)),
        ],
        [],
    ),
]


@pytest.mark.parametrize(("extra", "objs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_suspected_collision(extra: dict[str, Any], objs: list[Obj], expected: list[tuple[int, ...]]) -> None:
    rules = build([{**RULE, **extra}], calibration=CALIBRATION)
    events = run(rules, objs)
    assert [tuple(sorted(e.track_ids)) for e in events] == expected
    assert rules[0].state_size() == 0


def test_collision_event_fields_without_calibration() -> None:
    """Uncalibrated: rough speeds from the box height (a 50 px car is 1.5 m), same verdicts."""
    rules = build([RULE])
    events = run(rules, HEAD_ON)
    assert len(events) == 1
    ev = events[0]
    assert ev.kind == "suspected_collision" and ev.classes == ("car",) and ev.measurements["calibrated"] == 0
    assert ev.measurements["speed_before_kmh"] > 15 and ev.measurements["stopped_s"] >= 1.0
    assert ev.box is not None and ev.box[1] < 480 < ev.box[3]
    assert "Nghi có va chạm" in ev.texts["vi"] and "estimated speed before" in ev.texts["en"]


def test_collision_zone_limits_where_the_stop_counts() -> None:
    zones = {"far": {"points": [[0, 0], [1000, 0], [1000, 200], [0, 200]]}}
    rules = build([{**RULE, "zone": "far"}], calibration=CALIBRATION, zones=zones)
    assert run(rules, HEAD_ON) == []


def test_stop_speed_must_be_below_min_speed() -> None:
    with pytest.raises(ValueError, match="stop_speed_kmh"):
        build([{**RULE, "stop_speed_kmh": 20, "min_speed_kmh": 15}])
