"""Zone rules on synthetic tracks: occupancy and crowding hysteresis, loitering dwell, intrusion schedules."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from rules_paths import FPS, Obj, anchors, build, gap, path, run

from edge.camera_config import COCO_NAMES
from edge.records import Event, Tracks
from edge.rules import CameraRules, Schedule

ZONES = {"square": {"points": [[100, 100], [900, 100], [900, 900], [100, 900]]}}
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def crowd(counts: list[int], cls: str = "person") -> list[Tracks]:
    """Frames with `counts[i]` objects inside the zone, plus one object always outside it."""
    out: list[Tracks] = []
    for n in counts:
        xs = [150.0 + 50 * k for k in range(n)] + [950.0]
        ys = [500.0] * n + [950.0]
        boxes = np.array([[x - 10, y - 40, x + 10, y] for x, y in zip(xs, ys, strict=True)], np.float32)
        out.append(
            Tracks(
                np.arange(1, n + 2),
                boxes,
                np.full(n + 1, 0.7, np.float32),
                np.full(n + 1, COCO_NAMES.index(cls)),
                np.zeros((n + 1, 2), np.float32),
            )
        )
    return out


def drive(rules: CameraRules, frames: list[Tracks]) -> list[tuple[int, Event]]:
    out: list[tuple[int, Event]] = []
    for i, tracks in enumerate(frames):
        out.extend((i, e) for e in rules.update(tracks, i / FPS, 1e9 + i / FPS, i))
    return out


CROWD = {
    "kind": "crowding",
    "name": "crowd",
    "zone": "square",
    "threshold": 3,
    "hysteresis": 1,
    "min_duration_s": 0.5,
    "clear_s": 0.5,
    "update_interval_s": 0,
}

CROWD_CASES = [
    ("short burst never starts", [0] * 3 + [3] * 4 + [0] * 5, []),
    ("starts after min duration", [0] * 2 + [4] * 8, [(7, "start", 4)]),
    ("flapping 3/2 stays one episode", [3] * 6 + [2, 3] * 10 + [2] * 10, [(5, "start", 3)]),
    ("dip below for less than clear_s does not end", [3] * 6 + [1] * 4 + [3] + [1] * 4, [(5, "start", 3)]),
    (
        "ends after clear_s below threshold - hysteresis",
        [3] * 6 + [1] * 8 + [0] * 3,
        [(5, "start", 3), (11, "end", 1)],
    ),
    (
        "a second episode after the end",
        [3] * 6 + [0] * 6 + [5] * 6,
        [(5, "start", 3), (11, "end", 0), (17, "start", 5)],
    ),
]


@pytest.mark.parametrize(
    ("counts", "expected"), [c[1:] for c in CROWD_CASES], ids=[c[0] for c in CROWD_CASES]
)
def test_crowding_hysteresis(counts: list[int], expected: list[tuple[int, str, int]]) -> None:
    rules = CameraRules(build([CROWD], zones=ZONES))
    got = [(i, e.phase, e.measurements["count"]) for i, e in drive(rules, crowd(counts))]
    assert got == expected


def test_crowding_updates_and_fields() -> None:
    rules = CameraRules(build([{**CROWD, "update_interval_s": 1.0}], zones=ZONES))
    events = drive(rules, crowd([4] * 6 + [6] * 10 + [0] * 8))
    assert [(i, e.phase) for i, e in events] == [(5, "start"), (15, "update"), (21, "end")]
    update = events[1][1]
    assert update.measurements["max_count"] == 6 and update.measurements["duration_s"] == 1.0
    assert len(update.track_ids) == 6 and update.classes == ("person",)
    assert "Crowding ongoing" in update.texts["en"] and "Tập trung đông" in update.texts["vi"]
    assert events[2][1].measurements["duration_s"] == pytest.approx(1.6)


def test_zone_occupancy_start_end() -> None:
    rule = {
        "kind": "zone_occupancy",
        "name": "occ",
        "zone": "square",
        "min_duration_s": 0,
        "clear_s": 0.2,
        "classes": ["car"],
    }
    rules = CameraRules(build([rule], zones=ZONES))
    events = drive(rules, crowd([0, 1, 2, 0, 1, 0, 0, 0, 0], cls="car"))
    assert [(i, e.phase, e.measurements["count"]) for i, e in events] == [(1, "start", 1), (7, "end", 0)]
    assert events[0][1].box is not None


LOITER = {"kind": "loitering", "name": "loiter", "zone": "square", "max_dwell_s": 3.0, "exit_grace_s": 1.0}
INSIDE = anchors([(500, 500)] * 10)


def stay(seconds: float) -> list[tuple[float, float]]:
    return [(500.0 + (k % 3), 500.0) for k in range(int(seconds * FPS))]


LOITER_CASES = [
    ("short stay", [Obj(1, "person", anchors(stay(2.0)) + path((500, 500), (980, 980), 5))], []),
    (
        "loiters then leaves",
        [Obj(1, "person", anchors(stay(5.0)) + path((500, 500), (980, 980), 5) + anchors([(980, 980)] * 20))],
        [("start", 3.0), ("end", 5.3)],
    ),
    (
        "occlusion gap inside keeps the dwell",
        [Obj(1, "person", [*anchors(stay(2.0)), *gap(15), *anchors(stay(1.2))])],
        [("start", 3.5), ("end", 4.6)],
    ),
    (
        "brief exit under the grace keeps the dwell",
        [Obj(1, "person", anchors(stay(2.0)) + anchors([(980, 980)] * 5) + anchors(stay(1.5)))],
        [("start", 3.0), ("end", 3.9)],
    ),
    ("track ends while loitering", [Obj(1, "person", anchors(stay(4.0)))], [("start", 3.0), ("end", 3.9)]),
    ("not a watched class", [Obj(1, "car", anchors(stay(5.0)))], []),
]


@pytest.mark.parametrize(
    ("objs", "expected"), [c[1:] for c in LOITER_CASES], ids=[c[0] for c in LOITER_CASES]
)
def test_loitering(objs: list[Obj], expected: list[tuple[str, float]]) -> None:
    rules = build([LOITER], zones=ZONES)
    events = run(rules, objs)
    assert [(e.phase, e.measurements["dwell_s"]) for e in events] == expected
    assert rules[0].state_size() == 0


def local_ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=HCM).timestamp()


INTRUDE = {"kind": "intrusion", "name": "night", "zone": "square", "schedule": ["22:00-05:00"]}

SCHEDULE_CASES = [
    ("2026-11-28T21:59:00", False),
    ("2026-11-28T21:59:59.950", True),  # the 2nd observation inside falls at 22:00:00.05
    ("2026-11-28T22:00:00", True),
    ("2026-11-28T23:59:59.900", True),
    ("2026-11-29T00:00:00", True),
    ("2026-11-29T04:59:00", True),
    ("2026-11-29T04:59:59.900", False),  # 2nd observation at 05:00:00.0: the period is over
    ("2026-11-29T05:00:00", False),
    ("2026-11-29T12:00:00", False),
]


@pytest.mark.parametrize(("start", "fires"), SCHEDULE_CASES)
def test_intrusion_schedule_across_midnight(start: str, fires: bool) -> None:
    rules = build([INTRUDE], zones=ZONES)
    events = run(rules, [Obj(1, "person", anchors([(500, 500)] * 3))], ts0=local_ts(start))
    assert len(events) == int(fires)
    if fires:
        assert events[0].kind == "intrusion" and events[0].local_time.endswith("+07:00")
        assert "22:00-05:00" in events[0].texts["en"] and "Xâm nhập" in events[0].texts["vi"]
    assert rules[0].state_size() == 0


def test_intrusion_once_per_track_and_only_inside() -> None:
    rules = build([INTRUDE], zones=ZONES)
    objs = [
        Obj(1, "person", anchors([(500, 500)] * 10)),
        Obj(2, "person", anchors([(950, 950)] * 10)),
        Obj(3, "car", anchors([(400, 400)] * 10)),
        Obj(4, "person", anchors([(950, 500), (500, 500)] * 5)),
    ]
    events = run(rules, objs, ts0=local_ts("2026-11-28T23:00:00"))
    assert [e.track_ids for e in events] == [(1,)]


@pytest.mark.parametrize(
    ("periods", "local", "active"),
    [
        ((), "2026-11-28T12:00:00", True),
        (("08:00-17:30",), "2026-11-28T17:29:59", True),
        (("08:00-17:30",), "2026-11-28T17:30:00", False),
        (("22:00-05:00", "12:00-13:00"), "2026-11-28T12:30:00", True),
        (("00:00-24:00",), "2026-11-28T23:59:59", True),
    ],
)
def test_schedule(periods: tuple[str, ...], local: str, active: bool) -> None:
    assert Schedule(periods, "Asia/Ho_Chi_Minh").active(local_ts(local)) is active


def test_bad_schedule_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="22:00-05:00"):
        build([{**INTRUDE, "schedule": ["10pm-5am"]}], zones=ZONES)
