"""Stopped vehicle and wrong way on synthetic box paths."""

from __future__ import annotations

from typing import Any

import pytest
from rules_paths import Obj, anchors, build, gap, path, run

ZONES = {
    "lane": {"points": [[300, 0], [700, 0], [700, 1000], [300, 1000]], "direction": [0, 1]},
    "parking": {"points": [[800, 0], [1000, 0], [1000, 1000], [800, 1000]]},
}
# 1 px = 0.05 m on the ground (an affine calibration keeps the expected numbers readable)
CALIBRATION = {
    "image_points": [[0, 0], [1000, 0], [1000, 1000], [0, 1000]],
    "ground_points_m": [[0, 0], [50, 0], [50, 50], [0, 50]],
}
STOPPED = {"kind": "stopped_vehicle", "name": "stop", "zone": "lane", "min_stopped_s": 2.0}


def still(x: float, y: float, seconds: float, jitter: float = 3.0) -> list[tuple[float, float]]:
    return [
        (x + jitter * ((k % 3) - 1), y - jitter * ((k % 2) * 2 - 1) / 2) for k in range(int(seconds * 10))
    ]


ARRIVE = path((500, 100), (500, 400), 10)  # frames 0-9, stands at (500, 400) from t = 0.9 s

STOP_CASES: list[tuple[str, list[Obj], list[tuple[str, Any]]]] = [
    (
        "stops in the lane: fires once, ends with the track",
        [Obj(1, "car", ARRIVE + anchors(still(500, 400, 5.0)))],
        [("start", 2.0), ("end", "track_ended")],
    ),
    (
        "re-arms after moving on",
        [
            Obj(
                1,
                "car",
                ARRIVE
                + anchors(still(500, 400, 3.0))
                + path((500, 430), (500, 700), 10)
                + anchors(still(500, 700, 3.0)),
            )
        ],
        [("start", 2.0), ("end", "moved"), ("start", 2.0), ("end", "track_ended")],
    ),
    ("parked car outside the lane never triggers", [Obj(1, "car", anchors(still(900, 500, 10.0)))], []),
    ("slow creep is not stopped", [Obj(1, "truck", path((500, 100), (500, 300), 100))], []),
    ("short stop under min_stopped_s", [Obj(1, "car", ARRIVE + anchors(still(500, 400, 1.5)))], []),
    (
        "occlusion gap while standing still",
        [Obj(1, "bus", [*ARRIVE, *anchors(still(500, 400, 1.0)), *gap(20), *anchors(still(500, 400, 0.5))])],
        [("start", 3.1), ("end", "track_ended")],
    ),  # fires when seen again, 3.1 s after it stopped
    ("pedestrians are not vehicles", [Obj(1, "person", ARRIVE + anchors(still(500, 400, 5.0)))], []),
]


@pytest.mark.parametrize(("objs", "expected"), [c[1:] for c in STOP_CASES], ids=[c[0] for c in STOP_CASES])
def test_stopped_vehicle(objs: list[Obj], expected: list[tuple[str, Any]]) -> None:
    rules = build([STOPPED], zones=ZONES)
    events = run(rules, objs)
    got = [
        (e.phase, e.measurements["stopped_s"] if e.phase == "start" else e.measurements["reason"])
        for e in events
    ]
    assert got == expected
    assert rules[0].state_size() == 0


def test_stopped_vehicle_event_fields() -> None:
    events = run(build([STOPPED], zones=ZONES), [Obj(4, "car", ARRIVE + anchors(still(500, 400, 3.0)))])
    start, end = events
    assert start.track_ids == (4,) and start.classes == ("car",) and start.box is not None
    assert end.measurements["stopped_s"] == pytest.approx(3.0, abs=0.11)
    assert "Xe dừng bất thường" in start.texts["vi"] and "Stopped vehicle started" in start.texts["en"]


WRONG = {"kind": "wrong_way", "name": "wrong", "zone": "lane", "min_distance_m": 8.0}

# Without calibration a car box 50 px high is 1.5 m: 1 px = 0.03 m, so 8 m is ~267 px.
WRONG_CASES = [
    ("against the lane", False, [Obj(1, "car", path((500, 900), (500, 100), 41))], [(1, 8.0)]),
    ("along the lane", False, [Obj(1, "car", path((500, 100), (500, 900), 41))], []),
    ("against but too short", False, [Obj(1, "car", path((500, 900), (500, 700), 11))], []),
    ("outside the lane", False, [Obj(1, "car", path((900, 900), (900, 100), 41))], []),
    (
        "U-turn after driving along",
        False,
        [Obj(1, "motorcycle", path((500, 100), (500, 500), 21) + path((500, 480), (500, 100), 20))],
        [(1, 8.0)],
    ),
    ("jitter while waiting", False, [Obj(1, "car", anchors(still(500, 500, 10.0, jitter=6.0)))], []),
    ("calibrated: against the lane", True, [Obj(1, "car", path((500, 900), (500, 100), 41))], [(1, 8.0)]),
    ("calibrated: along the lane", True, [Obj(1, "car", path((500, 100), (500, 900), 41))], []),
    (
        "two vehicles, one wrong way",
        True,
        [Obj(1, "car", path((450, 900), (450, 100), 41)), Obj(2, "car", path((550, 100), (550, 900), 41))],
        [(1, 8.0)],
    ),
]


@pytest.mark.parametrize(
    ("calibrated", "objs", "expected"), [c[1:] for c in WRONG_CASES], ids=[c[0] for c in WRONG_CASES]
)
def test_wrong_way(calibrated: bool, objs: list[Obj], expected: list[tuple[int, float]]) -> None:
    extra: dict[str, Any] = {"calibration": CALIBRATION} if calibrated else {}
    rules = build([WRONG], zones=ZONES, **extra)
    events = run(rules, objs)
    assert [e.track_ids[0] for e in events] == [tid for tid, _ in expected]
    for e, (_, distance) in zip(events, expected, strict=True):
        # fires on the first frame past the distance: 20 px steps are 0.6 m (rough) or 1 m (calibrated)
        assert distance <= e.measurements["distance_m"] < distance + 1.0
        assert e.measurements["calibrated"] == int(calibrated)
        assert "Đi ngược chiều" in e.texts["vi"]
    assert rules[0].state_size() == 0


def test_wrong_way_needs_a_zone_direction() -> None:
    with pytest.raises(ValueError, match="direction"):
        build([{**WRONG, "zone": "parking"}], zones=ZONES)
